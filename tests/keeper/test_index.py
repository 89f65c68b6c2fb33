"""The SQLite account index: checkpoint, restart, no duplicates (a fake event source)."""

import pytest
from eth_utils import to_checksum_address

from margin_maintenance.keeper.index import AccountIndex

# Checksummed, as the index returns them; some events below use other casings.
A, B, C, D = (to_checksum_address(f"0x{i:040x}") for i in (0xA1CE, 0xB0B, 0xCAFE, 0xD00D))


class FakeLogs:
    """Events by block; records every range it is asked for; can fail on a given range."""

    def __init__(self, events: dict[int, list[str]], fail_from: int | None = None):
        self.events = events
        self.calls: list[tuple[int, int]] = []
        self.fail_from = fail_from

    def __call__(self, from_block: int, to_block: int):
        self.calls.append((from_block, to_block))
        if self.fail_from is not None and to_block >= self.fail_from:
            raise ConnectionError("node went away")
        return [
            (b, a)
            for b in sorted(self.events)
            if from_block <= b <= to_block
            for a in self.events[b]
        ]


@pytest.fixture
def db(tmp_path):
    return tmp_path / "keeper.sqlite"


def test_new_index__nothing_scanned__checkpoint_before_start(db):
    index = AccountIndex(db, start_block=100, scope="s")
    assert index.checkpoint == 99
    assert index.accounts() == [] and len(index) == 0


def test_sync__scans_from_start_in_chunks__checkpoint_at_head(db):
    logs = FakeLogs({100: [A], 105: [B], 120: [C]})
    index = AccountIndex(db, start_block=100, scope="s")
    assert index.sync(logs, head=125, chunk=10) == 3
    assert logs.calls == [(100, 109), (110, 119), (120, 125)]
    assert index.accounts() == [A, B, C]
    assert index.checkpoint == 125


def test_sync__repeated_account__stored_once(db):
    logs = FakeLogs({100: [A, A.lower()], 101: ["0x" + A[2:].upper(), B], 130: [A]})
    index = AccountIndex(db, start_block=100, scope="s")
    assert index.sync(logs, head=140, chunk=15) == 2
    assert index.accounts() == [A, B]


def test_sync__head_not_past_checkpoint__no_request(db):
    logs = FakeLogs({100: [A]})
    index = AccountIndex(db, start_block=100, scope="s")
    index.sync(logs, head=110)
    calls = list(logs.calls)
    assert index.sync(logs, head=110) == 0
    assert index.sync(logs, head=105) == 0
    assert logs.calls == calls and index.checkpoint == 110


def test_restart__resumes_from_checkpoint__misses_nothing(db):
    events = {100: [A], 110: [B]}
    first = AccountIndex(db, start_block=100, scope="s")
    first.sync(FakeLogs(events), head=115)
    first.close()
    events.update({116: [C], 130: [A, D]})  # C and D join while the keeper is down

    logs = FakeLogs(events)
    second = AccountIndex(db, start_block=100, scope="s")
    assert second.checkpoint == 115 and second.accounts() == [A, B]
    assert second.sync(logs, head=140) == 2
    assert logs.calls == [(116, 140)]  # nothing before the checkpoint is scanned again
    assert second.accounts() == [A, B, C, D]


def test_interrupted_sync__committed_chunks_kept__resume_finishes(db):
    events = {100: [A], 112: [B], 125: [C]}
    index = AccountIndex(db, start_block=100, scope="s")
    with pytest.raises(ConnectionError):
        index.sync(FakeLogs(events, fail_from=120), head=130, chunk=10)
    assert index.checkpoint == 119 and index.accounts() == [A, B]
    index.close()

    logs = FakeLogs(events)
    again = AccountIndex(db, start_block=100, scope="s")
    again.sync(logs, head=130, chunk=10)
    assert logs.calls == [(120, 129), (130, 130)]
    assert again.accounts() == [A, B, C] and again.checkpoint == 130


def test_record__checkpoint_never_moves_back(db):
    index = AccountIndex(db, start_block=0, scope="s")
    index.record([(5, A)], through_block=50, block_hash="0xaa")
    index.record([(3, B)], through_block=20, block_hash="0xbb")
    assert index.checkpoint == 50 and index.checkpoint_hash == "0xaa"
    assert set(index.accounts()) == {A, B}


def test_record__counts_only_new_accounts(db):
    index = AccountIndex(db, start_block=0, scope="s")
    assert index.record([(1, A), (2, B)], 2) == 2
    assert index.record([(3, A), (3, C)], 3) == 1
    assert A in index and D not in index and 42 not in index


def test_other_scope__starts_over(db):
    first = AccountIndex(db, start_block=100, scope="31337:0xold:100")
    first.sync(FakeLogs({100: [A]}), head=110)
    first.close()
    other = AccountIndex(db, start_block=100, scope="31337:0xnew:100")
    assert other.accounts() == [] and other.checkpoint == 99


def test_other_start_block__starts_over(db):
    AccountIndex(db, start_block=100, scope="s").sync(FakeLogs({100: [A]}), head=110)
    again = AccountIndex(db, start_block=50, scope="s")
    assert again.accounts() == [] and again.checkpoint == 49


def test_reset__forgets_accounts_keeps_scope(db):
    index = AccountIndex(db, start_block=10, scope="s")
    index.sync(FakeLogs({10: [A]}), head=20)
    index.reset()
    assert index.accounts() == [] and index.checkpoint == 9
    assert AccountIndex(db, start_block=10, scope="s").checkpoint == 9


def test_bad_arguments__rejected(db):
    with pytest.raises(ValueError):
        AccountIndex(db, start_block=-1)
    index = AccountIndex(db, start_block=0, scope="s")
    with pytest.raises(ValueError):
        index.sync(FakeLogs({}), head=10, chunk=0)


def test_context_manager__closes(db):
    with AccountIndex(db, start_block=0, scope="s") as index:
        index.record([(1, A)], 1)
    with AccountIndex(db, start_block=0, scope="s") as index:
        assert index.accounts() == [A]
