"""``sscn --help`` explains itself at once: every option of every subcommand has a one-line help
that shows its default, and no help imports torch (seconds of start-up)."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sscn.apps.cli import build_parser, parse
from sscn.training.recipes import PRETRAIN, TRAIN

ROOT = Path(__file__).resolve().parents[1]


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices


@pytest.mark.parametrize("command", sorted(subcommands()))
def test_every_option_has_a_help_line_with_its_default(command):
    parser = subcommands()[command]
    lacking = [action.option_strings[0] for action in parser._actions
               if action.option_strings and not isinstance(action, argparse._HelpAction)
               and action.help is not argparse.SUPPRESS and not (action.help or "").strip()]
    assert not lacking, f"sscn {command}: options without help: {lacking}"
    text = parser.format_help()
    for action in parser._actions:
        if action.option_strings and action.help not in (None, argparse.SUPPRESS) \
                and not isinstance(action, argparse._HelpAction):
            assert "default" in action.help, f"sscn {command} {action.option_strings[0]}: the help hides the default"
            assert "\n" not in action.help, f"sscn {command} {action.option_strings[0]}: more than one line"
    assert "%(" not in text


PROBE = """
import sys
from sscn.apps.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print("TORCH" if "torch" in sys.modules else "NO TORCH", file=sys.stderr)
"""


@pytest.mark.parametrize("argv", [["--help"]] + [[command, "--help"] for command in sorted(subcommands())])
def test_help_does_not_import_torch(argv):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, env=env, timeout=120)
    assert "usage: sscn" in done.stdout
    assert done.stderr.strip().splitlines()[-1] == "NO TORCH", done.stderr


@pytest.mark.parametrize("command, recipes", [("train", TRAIN), ("pretrain", PRETRAIN)])
def test_a_recipe_gives_the_defaults_and_flags_win(command, recipes):
    for name, settings in recipes.items():
        args = parse([command, "--recipe", name])
        assert {key: getattr(args, key) for key in settings} == settings
    name, settings = next(iter(recipes.items()))
    args = parse([command, "--recipe", name, "--batch-size", "3"])
    assert args.batch_size == 3 and args.lr == settings["lr"]
    assert parse([command]).batch_size != 3
