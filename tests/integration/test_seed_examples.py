"""The two code examples of the original description, verbatim except for
the import line, run as programs in a directory whose config.ini points at
the test server -- HDF5Client() takes no arguments in them; and the Python
examples of the READMEs and docs/protocol.md, taken from the Markdown, each
run twice against one server (a reader tries them more than once)."""

import os
import re
import subprocess
import sys

import h5py
import numpy as np
import pytest

import h5a_util

EXAMPLE_1 = '''\
import asyncio
import numpy as np
from client.client import HDF5Client

async def main():
    client = HDF5Client()
    await client.connect()
    try:
        await client.create_group("/my_group")
        data_to_write = np.array([1, 2, 3, 4, 5])
        await client.write("/my_group/my_dataset", data_to_write)
        read_data = await client.read("/my_group/my_dataset")
        print(f"Read data: {read_data}")
    finally:
        await client.close()

asyncio.run(main())
'''

EXAMPLE_2 = '''\
import asyncio
import numpy as np
from client.client import HDF5Client

async def main():
    client = HDF5Client()
    await client.connect()
    try:
        # Write large data with gzip compression
        large_data = np.random.rand(1000)
        await client.write("/my_group/compressed_data", large_data, compression="gzip")
        print("Wrote data with compression.")

        # Write small data without compression
        small_data = np.array([1, 2, 3])
        await client.write("/my_group/uncompressed_data", small_data, compression=None)
        print("Wrote data without compression.")

        # Decompression is automatic on read
        read_compressed = await client.read("/my_group/compressed_data")
        print(f"Successfully read compressed data of shape: {read_compressed.shape}")
    finally:
        await client.close()

asyncio.run(main())
'''

CONNECTING = '''\
import asyncio
from client.client import HDF5Client

async def main():
    client = HDF5Client()
    await client.connect()
    try:
        # ... perform operations here ...
        pass
    finally:
        await client.close()

if __name__ == "__main__":
    asyncio.run(main())
'''


def _ours(source):
    changed = source.replace("from client.client import HDF5Client", "from hdf5_async import HDF5Client")
    assert changed != source
    return changed


def _run_example(tmp_path, srv, name, source, seed=True):
    d = tmp_path / name
    d.mkdir()
    # the seed's config.ini, pointing at the test server
    (d / "config.ini").write_text(
        "[server]\nhost = 0.0.0.0\nport = %d\nhdf5_file_path = data.h5\nuse_compression = false\n"
        "debug = false\nserialization_format = messagepack\n\n[client]\n"
        "# This section is for client-specific settings if any were needed.\n"
        "# Currently, the client reads the [server] section for connection info.\n" % srv.port
    )
    script = d / (name + ".py")
    script.write_text(_ours(source) if seed else source)
    env = dict(os.environ)
    env["PYTHONPATH"] = h5a_util.PYTHON_DIR + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=str(d),
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=h5a_util.IO_TIMEOUT,
    )
    assert proc.returncode == 0, "example failed:\nstdout:\n%s\nstderr:\n%s" % (proc.stdout, proc.stderr)
    return proc.stdout


def test_seed_examples(tmp_path, start_server):
    srv = start_server()
    out = _run_example(tmp_path, srv, "connecting", CONNECTING)
    assert out == ""
    out1 = _run_example(tmp_path, srv, "example1", EXAMPLE_1)
    assert out1 == "Read data: [1 2 3 4 5]\n"
    out2 = _run_example(tmp_path, srv, "example2", EXAMPLE_2)
    assert out2 == (
        "Wrote data with compression.\n"
        "Wrote data without compression.\n"
        "Successfully read compressed data of shape: (1000,)\n"
    )
    srv.stop()
    with h5py.File(srv.file, "r") as f:
        np.testing.assert_array_equal(f["my_group/my_dataset"][()], [1, 2, 3, 4, 5])
        assert f["my_group/compressed_data"].compression == "gzip"
        assert f["my_group/compressed_data"].shape == (1000,)
        assert f["my_group/uncompressed_data"].compression is None
        np.testing.assert_array_equal(f["my_group/uncompressed_data"][()], [1, 2, 3])


def test_example_2_alone_on_fresh_server(tmp_path, start_server):
    """Example 2 does not create /my_group itself: write creates parents."""
    srv = start_server(server_opts={"use_compression": "true"})
    _run_example(tmp_path, srv, "example2", EXAMPLE_2)
    srv.stop()
    with h5py.File(srv.file, "r") as f:
        # compression=None means the server default, gzip here
        assert f["my_group/uncompressed_data"].compression == "gzip"
        assert f["my_group/compressed_data"].compression == "gzip"


def _markdown_python(relpath):
    """The ```python blocks of a Markdown file of the repository."""
    with open(os.path.join(h5a_util.REPO_ROOT, relpath), encoding="utf-8") as f:
        return re.findall(r"^```python\n(.*?)^```$", f.read(), re.M | re.S)


DOC_EXAMPLES = [("README.md", 2), ("python/README.md", 2), ("docs/protocol.md", 1),
                ("docs/from-h5py.md", 2)]


def test_doc_examples_all_listed():
    for relpath, n in DOC_EXAMPLES:
        assert len(_markdown_python(relpath)) == n, "%s: add its new python block here" % relpath


@pytest.mark.parametrize("relpath,index", [(p, i) for p, n in DOC_EXAMPLES for i in range(n)])
def test_doc_example_runs_twice(tmp_path, start_server, relpath, index):
    srv = start_server()
    source = _markdown_python(relpath)[index]
    if "8888" in source:  # examples that name the default port themselves
        source = source.replace("8888", str(srv.port))
    variants = [source]
    if 'h5py.File("run42.h5", "a")' in source:  # from-h5py.md: the same script, both ways
        variants.append(source.replace("import h5py", "import hdf5_async").replace(
            'h5py.File("run42.h5", "a")', "hdf5_async.File()"))
    name = relpath.replace("/", "_").replace(".", "_") + str(index)
    for v, text in enumerate(variants):
        first = _run_example(tmp_path, srv, "%s-%d-1" % (name, v), text, seed=False)
        second = _run_example(tmp_path, srv, "%s-%d-2" % (name, v), text, seed=False)
        assert second == first
