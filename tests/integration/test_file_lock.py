"""What the README says of other programs opening the served file: HDF5's
file locking refuses them while the server runs; once it stopped, the file
is a plain HDF5 file with everything in it."""

import h5py
import numpy as np
import pytest

from h5a_util import session


def test_other_programs_are_refused_while_served(server):
    session(server, lambda c: c.write("/x", np.arange(3)))
    with pytest.raises(OSError, match="unable to lock file"):
        h5py.File(server.file, "r")
    server.stop()
    with h5py.File(server.file, "r") as f:
        assert f["x"][()].tolist() == [0, 1, 2]
