"""Progress reporting gated on ``verbose``: a tqdm bar per phase, a line per epoch."""

import sys


class Progress:
    """Report epochs of one phase.

    verbose=0 prints nothing; 1 shows a progress bar with the current loss; 2 also
    prints one line per epoch.
    """

    def __init__(self, verbose, total, desc, loss_name):
        self.verbose = verbose
        self.desc = desc
        self.loss_name = loss_name
        self.epoch = 0
        self.bar = None
        if verbose >= 1:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="epoch", leave=True,
                            file=sys.stderr)

    def update(self, n, loss):
        self.epoch += n
        if self.bar is not None:
            self.bar.update(n)
            self.bar.set_postfix({self.loss_name: f"{loss:.4g}"})
        if self.verbose >= 2:
            line = f"{self.desc} epoch {self.epoch}: {self.loss_name} = {loss:.6g}"
            if self.bar is not None:
                self.bar.write(line, file=sys.stderr)
            else:
                print(line, file=sys.stderr)

    def set_total(self, total):
        """The phase's budget of epochs changed to ``total``."""
        if self.bar is not None and self.bar.total != total:
            self.bar.total = total
            self.bar.refresh()

    def close(self):
        if self.bar is not None:
            self.bar.close()


def progress_factory(verbose):
    """A callable ``(total, desc) -> Progress`` for the given verbosity."""

    def make(total, desc):
        loss_name = "loss" if desc == "pretraining" else "-elbo"
        return Progress(verbose, total, desc, loss_name)

    return make
