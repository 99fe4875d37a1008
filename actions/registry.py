"""Every action by name, and how to build one for a target from operator options."""

from __future__ import annotations

import functools
from pathlib import Path

from actions.base import Action, ActionContext
from actions.etcd_actions import ETCD_ACTIONS, MemberAdd, SnapshotSave
from actions.kube_actions import KUBE_ACTIONS
from actions.rolling_defragment import RollingDefragment
from actions.static_pod_actions import STATIC_POD_ACTIONS
from cluster.collect import Collector
from cluster.config import Thresholds
from cluster.seams import NodeProvisioner

CLASSES: tuple[type[Action], ...] = (
    *ETCD_ACTIONS,
    RollingDefragment,
    *STATIC_POD_ACTIONS,
    *KUBE_ACTIONS,
)
ACTIONS: dict[str, type[Action]] = {cls.spec.name: cls for cls in CLASSES}


class UnknownAction(ValueError):
    pass


def build_action(
    name: str,
    target: str,
    *,
    peer_url: str | None = None,
    voting: bool = False,
    file: Path | None = None,
    provisioner: NodeProvisioner | None = None,
    thresholds: Thresholds | None = None,
) -> Action:
    """`provisioner` (the config's seam) proposes member-add's peer URL when none is given;
    `thresholds` (the config's) are what the guard judges with, as the findings do."""
    cls = ACTIONS.get(name)
    if cls is None:
        raise UnknownAction(f"unknown action {name!r} (one of: {', '.join(sorted(ACTIONS))})")
    action: Action
    if cls is MemberAdd:
        if peer_url is None and provisioner is not None:
            peer_url = provisioner.peer_url_for(target)
        action = MemberAdd(target, peer_url=peer_url, voting=voting)
    elif cls is SnapshotSave:
        action = SnapshotSave(target, path=file)
    else:
        action = cls(target)
    if thresholds is not None:
        action.thresholds = thresholds
    return action


def context_for(collector: Collector, state_dir: Path) -> ActionContext:
    """Actions reuse the collector's open channels and re-read the cluster through it."""
    return ActionContext(
        config=collector.config,
        etcd=collector.etcd_client,
        collect=functools.partial(collector.collect, fresh=True),
        state_dir=state_dir,
        nodes=collector.nodes,
        kube=collector.kube,
    )
