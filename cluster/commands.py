"""Equivalent commands an operator may paste: every word shell-quoted.

Findings and plans show the command line that does what the cockpit would do. Their words
include file names, member names and endpoints read from the cluster, and a pasted command must
do exactly what it says: a CNI file named `x; rm -rf /` or `$(curl …)` must stay one argument.
Over SSH the remote command is quoted once more, because the node's shell reads it again.
"""

from __future__ import annotations

import shlex


def command_line(*words: str) -> str:
    """The words as one shell line (words that need no quoting are shown as they are)."""
    return shlex.join(words)


def ssh_line(address: str, *remote: str) -> str:
    """`ssh ADDRESS 'REMOTE…'`: the remote words quoted for the node's shell, then the whole
    remote command quoted for the operator's."""
    return command_line("ssh", address, command_line(*remote))


def and_then(*lines: str) -> str:
    """Command lines run one after the other, each only if the previous one worked."""
    return " && ".join(lines)
