"""etcd's /metrics, parsed and windowed: on real pages a real etcd 3.5 served.

tests/data/etcd-metrics-{1,2,3}.txt are one member's page (cut to the series the cockpit reads,
by `wanted_lines` itself) before and after 20 writes, then after a restart and 5 more writes:
the counters and histograms begin again at 0 there, which a rate must count as a restart, not
as a fall. The figures expected below are worked out by hand the way Prometheus's
`increase` and `histogram_quantile` define them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster.config import ConfigError, parse_config
from cluster.etcd.metrics import (
    FSYNC,
    GRPC_HANDLED,
    LEADER_CHANGES,
    MAX_LABELLED,
    PROPOSALS_APPLIED,
    parse_page,
    wanted_lines,
)
from cluster.etcd.rates import bucket_increase, figures, increase, quantile, slope
from cluster.model import FailedCalls
from cluster.untrusted import neutralized
from tests.helpers import PROJECT

DATA = PROJECT / "tests" / "data"


def page(n: int) -> str:
    return (DATA / f"etcd-metrics-{n}.txt").read_text(encoding="utf-8")


def sample(n: int, at: float):  # type: ignore[no-untyped-def]
    return parse_page(page(n), at)


def test_a_page_is_read_into_its_scalars_histograms_and_grpc_counters() -> None:
    first = sample(1, 100.0)
    assert first.scalars[PROPOSALS_APPLIED] == 34
    assert first.scalars[LEADER_CHANGES] == 1
    assert first.histograms[FSYNC][0] == (0.001, 30)
    assert first.histograms[FSYNC][-1] == (float("inf"), 36)
    assert first.grpc["Put"] == (30, {})


def test_only_the_wanted_series_reach_the_parser() -> None:
    text = (
        "# HELP go_goroutines Number of goroutines.\n# TYPE go_goroutines gauge\n"
        "go_goroutines 96\n"
        "# TYPE grpc_server_handled_total counter\n"
        'grpc_server_handled_total{grpc_code="Aborted",grpc_method="Put"} 0\n'
        'grpc_server_handled_total{grpc_code="Unavailable",grpc_method="Put"} 3\n'
        'grpc_server_handled_total{grpc_code="OK",grpc_method="Put"} 97\n'
    )
    kept = wanted_lines(text)
    assert "go_goroutines" not in kept and "Aborted" not in kept
    assert parse_page(text, 0.0).grpc == {"Put": (100, {"Unavailable": 3})}


def test_streams_ending_when_their_client_leaves_are_not_failed_requests() -> None:
    """An API server's watch streams end as Unavailable whenever it drops one or restarts:
    on the real control plane that read as 100 % of Watch calls failing."""
    text = (
        "# TYPE grpc_server_handled_total counter\n"
        'grpc_server_handled_total{grpc_code="Unavailable",grpc_method="Watch",'
        'grpc_service="etcdserverpb.Watch",grpc_type="bidi_stream"} 12\n'
        'grpc_server_handled_total{grpc_code="OK",grpc_method="Range",'
        'grpc_service="etcdserverpb.KV",grpc_type="unary"} 40\n'
    )
    assert parse_page(text, 0.0).grpc == {"Range": (40, {})}


def test_a_page_that_is_not_prometheus_text_raises_value_error() -> None:
    with pytest.raises(ValueError):
        parse_page(f"# TYPE {LEADER_CHANGES[:-6]} counter\n{LEADER_CHANGES} many\n", 0.0)


def test_a_page_naming_endless_peers_is_capped() -> None:
    lines = ["# TYPE etcd_network_peer_round_trip_time_seconds histogram"]
    for peer in range(MAX_LABELLED + 50):
        for le in ("0.1", "+Inf"):
            lines.append(
                f'etcd_network_peer_round_trip_time_seconds_bucket{{To="{peer:x}",le="{le}"}} 1'
            )
    assert len(parse_page("\n".join(lines) + "\n", 0.0).peers) == MAX_LABELLED


def test_a_counter_that_falls_restarted_and_counts_whole() -> None:
    assert increase([30, 50, 5]) == 20 + 5
    assert increase([30]) == 0


def test_a_histograms_buckets_rise_across_a_restart() -> None:
    buckets = bucket_increase([sample(n, 0.0).histograms[FSYNC] for n in (1, 2, 3)])
    assert buckets[0] == (0.001, 19 + 4)
    assert buckets[-1] == (float("inf"), 20 + 7)


def test_p99_is_interpolated_in_its_bucket_as_histogram_quantile_does() -> None:
    # 19 of 20 new fsyncs under 2 ms, the 20th between 2 and 4 ms: rank 19.8 lies 0.8 into
    # the (0.002, 0.004] bucket.
    buckets = bucket_increase([sample(n, 0.0).histograms[FSYNC] for n in (1, 2)])
    assert quantile(0.99, buckets) == pytest.approx(0.002 + 0.002 * 0.8)


def test_quantile_edges_follow_prometheus() -> None:
    inf = float("inf")
    assert quantile(0.99, ((0.1, 0), (inf, 0))) is None  # no observation: NaN in PromQL
    assert quantile(0.99, ((0.1, 5), (0.2, 5))) is None  # no +Inf bucket
    assert quantile(0.99, ((0.1, 5), (0.2, 5), (inf, 10))) == 0.2  # rank in +Inf: top bound
    assert quantile(0.5, ((0.1, 10), (inf, 10))) == pytest.approx(0.05)  # lowest from 0


def test_figures_over_two_scrapes_five_seconds_apart() -> None:
    read = figures("m1", "https://m1:2379", [sample(1, 100.0), sample(2, 105.0)], 300, 900)
    assert read.window == 5.0
    assert read.applied_per_second == pytest.approx((54 - 34) / 5)
    assert read.fsync_p99 == pytest.approx(0.0036)
    assert read.leader_changes == 0
    assert read.failed_per_minute == 0
    assert read.grpc_failed == FailedCalls("Put", handled=20, failed=0)
    assert read.has_leader is True and read.quota == 2 * 1024**3
    assert len(read.trend.applied_per_second) == 1


def test_the_rate_window_keeps_only_recent_scrapes() -> None:
    samples = [sample(1, 0.0), sample(2, 400.0), sample(3, 405.0)]
    read = figures("m1", "e", samples, rate_window=300, long_window=900)
    assert read.window == 5.0 and read.long_window == 405.0
    assert read.grpc_failed and read.grpc_failed.method == "Put"
    assert read.grpc_failed.share == 0.0
    assert read.applied_per_second == pytest.approx((61 - 54) / 5)


def test_a_member_never_scraped_says_so() -> None:
    read = figures("m1", "e", [], 300, 900, error="e/metrics: no answer within 2 s")
    assert read.scraped_at is None and read.error == "e/metrics: no answer within 2 s"


def test_growth_is_the_least_squares_slope() -> None:
    assert slope([(0, 100), (10, 200), (20, 300)]) == pytest.approx(10)
    assert slope([(5, 1)]) is None


def test_grpc_failures_are_shared_per_method_and_counted_per_code() -> None:
    def text(ok: int, unavailable: int, deadline: int) -> str:
        return (
            f"# TYPE {GRPC_HANDLED[:-6]} counter\n"
            f'{GRPC_HANDLED}{{grpc_code="OK",grpc_method="Range"}} {ok}\n'
            f'{GRPC_HANDLED}{{grpc_code="Unavailable",grpc_method="Range"}} {unavailable}\n'
            f'{GRPC_HANDLED}{{grpc_code="DeadlineExceeded",grpc_method="Range"}} {deadline}\n'
            f'{GRPC_HANDLED}{{grpc_code="NotFound",grpc_method="Range"}} 7\n'
        )

    assert parse_page(text(100, 1, 0), 0.0).grpc == {"Range": (108, {"Unavailable": 1})}
    samples = [parse_page(text(100, 1, 0), 0.0), parse_page(text(183, 3, 15), 10.0)]
    read = figures("m1", "e", samples, 300, 900)
    assert read.grpc_failed == FailedCalls(
        "Range", handled=100, failed=17, codes=(("DeadlineExceeded", 15), ("Unavailable", 2))
    )
    assert read.grpc_failed.share == pytest.approx(17 / 100)


def test_a_failing_codes_counter_that_restarts_counts_whole() -> None:
    """After a restart the member's counters begin again, and a code at 0 is not on the page."""

    def text(ok: int, unavailable: int) -> str:
        failed = f'{GRPC_HANDLED}{{grpc_code="Unavailable",grpc_method="Put"}} {unavailable}\n'
        return (
            f"# TYPE {GRPC_HANDLED[:-6]} counter\n"
            f'{GRPC_HANDLED}{{grpc_code="OK",grpc_method="Put"}} {ok}\n'
            + (failed if unavailable else "")
        )

    pages = [(0.0, text(50, 4)), (5.0, text(10, 0)), (10.0, text(15, 3))]  # restart at 5 s
    read = figures("m1", "e", [parse_page(page, at) for at, page in pages], 300, 900)
    assert read.grpc_failed == FailedCalls(
        "Put", handled=10 + 8, failed=3, codes=(("Unavailable", 3),)
    )


def test_a_members_label_values_reach_the_snapshot_printable() -> None:
    """A peer ID or a gRPC method is the member's word: the collector neutralizes the figures
    (cluster.untrusted) as it does the rest of the etcd part."""
    hostile = "\x1b]52;c;evil\x07"
    text = (
        "# TYPE etcd_network_peer_round_trip_time_seconds histogram\n"
        f'etcd_network_peer_round_trip_time_seconds_bucket{{To="{hostile}",le="0.1"}} 1\n'
        f'etcd_network_peer_round_trip_time_seconds_bucket{{To="{hostile}",le="+Inf"}} 1\n'
        f"# TYPE {GRPC_HANDLED[:-6]} counter\n"
        f'{GRPC_HANDLED}{{grpc_code="Unavailable",grpc_method="{hostile}"}} 1\n'
    )
    empty = text.replace("} 1\n", "} 0\n")  # before: nothing observed, nothing failed
    read = neutralized(
        figures("m1", "e", [parse_page(empty, 0.0), parse_page(text, 5.0)], 300, 900)
    )
    assert read.peer_rtt_p99 and read.grpc_failed
    shown = [read.peer_rtt_p99[0][0], read.grpc_failed.method]
    assert all("\x1b" not in s and "\x07" not in s and "␛" in s for s in shown)


def test_the_metrics_interval_is_a_positive_number_of_seconds(tmp_path: Path) -> None:
    raw = {"etcd": {"endpoints": ["https://127.0.0.1:2379"], "ca": "c", "cert": "c", "key": "k"}}
    assert parse_config(raw, tmp_path).etcd.metrics_interval == 5.0
    raw["etcd"]["metrics_interval"] = 2.5
    assert parse_config(raw, tmp_path).etcd.metrics_interval == 2.5
    raw["etcd"]["metrics_interval"] = 0
    with pytest.raises(ConfigError, match="metrics_interval must be a positive number"):
        parse_config(raw, tmp_path)
