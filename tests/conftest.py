"""Suite-wide test settings."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """The tests run many small kernels: on a 2-core machine shared with other jobs, OpenMP
    threads waiting on each other made them up to ~50x slower than one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def poisson_fno_recipe(path, data, *, train: int = 6, test: int = 2):
    """Write a one-epoch training recipe at ``path``: a tiny 2D FNO mapping ``f`` to ``u`` of
    the poisson2d dataset ``data``; returns ``path``."""
    import json

    path.write_text(
        'name = "t"\n[model]\nname = "fno"\nn_modes = [4, 4]\nhidden_channels = 4\n'
        f'n_layers = 1\n[data]\ndataset = {json.dumps(str(data))}\ninputs = ["f"]\n'
        f'targets = ["u"]\ntrain_samples = {train}\ntest_samples = {test}\n'
        '[train]\nepochs = 1\nbatch_size = 2\nlr = 1e-3\n')
    return path
