"""The CLI's one option parser and its command table: the same rules
before and after the command, and the order in which a command line is
judged (no server needed: nothing here gets as far as connecting)."""

import re

import pytest

from test_cli import EXIT_FILE, EXIT_USAGE, SUBCOMMANDS, fails, ok, run, usage_line


@pytest.mark.parametrize("args", [["--bogus=1", "ping"], ["ping", "--bogus=1"],
                                  ["--bogus", "ping"], ["ping", "--bogus"]])
def test_unknown_option_reads_the_same_before_and_after_the_command(args):
    r = fails(run(args), EXIT_USAGE, r"unknown option '--bogus'\n")
    assert r.stdout == ""


@pytest.mark.parametrize("args, name", [(["--version=1"], "version"), (["--help=1"], "help"),
                                        (["ls", "--recursive=1"], "recursive"),
                                        (["ping", "--help=1"], "help")])
def test_a_flag_given_a_value(args, name):
    fails(run(args), EXIT_USAGE, "option '--%s' takes no value" % name)


def test_version_only_before_the_command():
    # what follows --version is not looked at
    assert ok(run(["--version", "--bogus"])).stdout.startswith("hdf5-async ")
    fails(run(["ping", "--version"]), EXIT_USAGE, "unknown option '--version'")


def test_double_dash():
    # before the command, what follows is the command, however it looks
    fails(run(["--", "-h"]), EXIT_USAGE, "unknown command '-h'")
    # after it, operands
    fails(run(["mkgroup", "--", "-x", "y"]), EXIT_USAGE, "unexpected argument 'y'")
    fails(run(["--"]), EXIT_USAGE, "no command given")


def test_short_option_spellings():
    fails(run(["ls", "-rx"]), EXIT_USAGE, "unknown option '-rx'")
    fails(run(["get", "/x", "-o"]), EXIT_USAGE, "option '-o' needs a value")
    fails(run(["get", "/x", "-o", ""]), EXIT_USAGE, "-o: empty file name")
    # an option of another command is unknown here
    fails(run(["ping", "-r"]), EXIT_USAGE, "unknown option '-r'")


def test_command_table_and_main_help_agree():
    """The command list in usage errors comes from the command table: every
    entry has its help, and the main help names each."""
    r = fails(run(["frobnicate"]), EXIT_USAGE)
    listed = re.search(r"\(commands: (.*)\)", r.stderr).group(1).split(", ")
    assert listed == SUBCOMMANDS
    assert re.search(r"no command given \((.*)\)", fails(run([]), EXIT_USAGE).stderr).group(1) \
        == ", ".join(SUBCOMMANDS)
    main = ok(run(["--help"])).stdout
    for sub in listed:
        assert "\n  %s" % sub in main
        assert ok(run(["help", sub])).stdout.startswith(usage_line(sub))


def test_what_is_judged_first(tmp_path):
    """The command line, then the config file, then local input, then the
    connection: an error earlier in that order wins."""
    (tmp_path / "bad.ini").write_text("[client]\nport = nope\n")
    bad = ["--config", str(tmp_path / "bad.ini")]
    # a command's own check comes before the config file
    fails(run(bad + ["ln", "a", "b"]), EXIT_USAGE, "only soft links")
    fails(run(bad + ["put", "/x", "a.npy", "--compression", "lzf", "--level", "3"]), EXIT_USAGE,
          "--level applies only")
    # the config file before a selection or a file
    fails(run(bad + ["get", "/x", "--slice", "1,,2"]), EXIT_USAGE, "port")
    fails(run(bad + ["put", "/x", tmp_path / "missing.npy"]), EXIT_USAGE, "port")
    # a selection or a file before the connection (nothing listens on port 1)
    fails(run(["--port", "1", "get", "/x", "--slice", "1,,2"]), EXIT_USAGE, "--slice")
    fails(run(["--port", "1", "put", "/x", tmp_path / "missing.npy"]), EXIT_FILE, "missing.npy")
    fails(run(["--port", "1", "put", "/x", tmp_path / "missing.npy", "--slice", "1,,2"]),
          EXIT_USAGE, "--slice")
