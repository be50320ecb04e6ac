"""Read transactions with Dask, a block at a time, and stage them by time partition.

Input: one IBM AMLworld CSV, several of them (concatenated in the order given) or a Parquet
dataset (a file or a folder of canonical columns). Each block is validated like the single
process input (bad rows quarantined per block, or ``--strict``), numbered, and its rows written
to the staging folder under their time partition: ``raw/<partition>/<block>.parquet``. No
process ever holds more than a block.

Rows are numbered ``block << 32 | position in block``: sorting by (timestamp, number) is the
single process's order (timestamps, ties in input order), and once every block's length is known
the number converts to the row's position in the validated input (:meth:`StagedInput.positions`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import dask.dataframe as dd
import numpy as np
import pandas as pd
from dask import delayed
from distributed import Client

from illicitflows.scale.tasks import run_tasks, write_parquet
from illicitflows.transactions.features.currency import USD_NAMES
from illicitflows.transactions.io import canonical_columns, ibm_columns
from illicitflows.transactions.schema import TRANSACTION_SCHEMA
from illicitflows.validation import SchemaError, accept

ROW = "_row"
BLOCK_BITS = 32
BLOCK_SIZE = "64MiB"
RATE_COLUMNS = ["timestamp", "payment_currency", "receiving_currency", "amount_paid",
                "amount_received"]


@dataclass
class BlockSummary:
    """What staging one block found: rows kept, rows quarantined, rows per partition and the
    payments with USD on exactly one side (all the currency rates are implied from)."""

    block: int
    rows: int
    bad: int
    partitions: dict[int, int]
    rate_rows: pd.DataFrame
    hours: pd.Series  # rows per hour (the temporal split's and the folds' cuts)


@dataclass
class StagedInput:
    """The staged input: ``period`` (seconds) partitions, each block's summary, the files of
    every partition."""

    staging: Path
    period: int
    blocks: list[BlockSummary]
    files: dict[int, list[Path]] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(b.rows for b in self.blocks)

    @property
    def bad(self) -> int:
        return sum(b.bad for b in self.blocks)

    @property
    def partitions(self) -> list[int]:
        return sorted(self.files)

    def rate_rows(self) -> pd.DataFrame:
        return pd.concat([b.rate_rows for b in self.blocks], ignore_index=True)

    def timing_rows(self, until: int | None = None) -> pd.DataFrame:
        """Times and accounts of the rows before ``until`` (epoch seconds; all without it):
        what the builder measures the data's time scale on, as the single process's fit
        does (five columns of the fitted period, read at the client)."""
        columns = ["timestamp", "from_bank", "from_account", "to_bank", "to_account"]
        frames = [pd.read_parquet(path, columns=columns)
                  for key in self.partitions for path in self.files[key]
                  if until is None or key * self.period < until]
        frame = pd.concat(frames, ignore_index=True)
        if until is not None:
            stamps = frame["timestamp"].to_numpy(dtype="datetime64[s]").astype("int64")
            frame = frame[stamps < until].reset_index(drop=True)
        return frame

    def hours(self) -> pd.Series:
        """Rows per hour (index: the hour's start), in time order."""
        return pd.concat([b.hours for b in self.blocks]).groupby(level=0).sum().sort_index()

    def days(self) -> pd.Series:
        """Rows per day (index: day), in time order."""
        hours = self.hours()
        return hours.groupby(hours.index.floor("D")).sum()

    def offsets(self) -> np.ndarray:
        """Position in the validated input of each block's first row."""
        counts = np.zeros(max(b.block for b in self.blocks) + 1, dtype=np.int64)
        for b in self.blocks:
            counts[b.block] = b.rows
        return np.concatenate([[0], np.cumsum(counts)[:-1]])

    def positions(self, numbers: np.ndarray) -> np.ndarray:
        """Row numbers (``_row``) as positions in the validated input (the single process's
        frame index)."""
        return input_positions(numbers, self.offsets())


def input_positions(numbers: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Row numbers (``_row``) as positions in the validated input, given each block's first
    position (:meth:`StagedInput.offsets`)."""
    numbers = np.asarray(numbers, dtype=np.int64)
    return offsets[numbers >> BLOCK_BITS] + (numbers & ((1 << BLOCK_BITS) - 1))


def parse_period(text: str) -> int:
    """``1d``, ``12h``, ``7d`` -> seconds (whole seconds, positive)."""
    try:
        seconds = pd.Timedelta(re.sub(r"(?<=\d)d$", "D", text.strip())).total_seconds()
    except ValueError as error:
        raise ValueError(f"--partition {text!r}: not a duration such as 1d or 12h") from error
    if seconds < 1 or seconds != int(seconds):
        raise ValueError(f"--partition {text!r}: needs a whole number of seconds, at least 1")
    return int(seconds)


def read_blocks(paths: list[Path], block_size: str = BLOCK_SIZE) -> dd.DataFrame:
    """The input as a Dask frame of raw text columns under canonical names (nothing read yet
    but the headers)."""
    paths = [Path(p) for p in paths]
    if not paths:
        raise ValueError("no input given (--data)")
    if len(paths) == 1 and (paths[0].is_dir() or paths[0].suffix.lower() in {".parquet", ".pq"}):
        frame = dd.read_parquet(str(paths[0]))
        return frame.map_partitions(canonical_columns)
    if any(p.is_dir() or p.suffix.lower() in {".parquet", ".pq"} for p in paths):
        raise SchemaError("--data takes one Parquet dataset or one or more IBM CSV files, "
                          "not a mix")
    names = [ibm_columns(p) for p in paths]
    if any(n != names[0] for n in names):
        raise SchemaError(f"{paths}: the CSV files do not share one header (with and without "
                          "'Is Laundering')")
    return dd.read_csv([str(p) for p in paths], dtype=str, keep_default_na=False, header=0,
                       names=names[0], blocksize=block_size)


def stage_block(raw: pd.DataFrame, block: int, staging: Path, period: int, strict: bool,
                quarantine: Path | None) -> BlockSummary:
    """Validate one block, number its rows and write them by partition (a Dask task: written
    atomically, so a retry after a lost worker writes the same files again)."""
    result = TRANSACTION_SCHEMA.parse(raw)
    path = None if quarantine is None else quarantine / f"block-{block:05d}.quarantine.csv"
    frame = accept(result, strict=strict, quarantine=path)
    frame[ROW] = (np.int64(block) << BLOCK_BITS) + np.arange(len(frame), dtype=np.int64)
    seconds = frame["timestamp"].to_numpy(dtype="datetime64[s]").astype(np.int64)
    partition = seconds // period
    counts: dict[int, int] = {}
    for key in np.unique(partition).tolist():
        rows = frame[partition == key]
        write_parquet(rows, staging / "raw" / str(key) / f"{block:05d}.parquet")
        counts[int(key)] = len(rows)
    usd_paid = frame["payment_currency"].isin(USD_NAMES)
    usd_got = frame["receiving_currency"].isin(USD_NAMES)
    return BlockSummary(block, len(frame), len(result.bad_rows), counts,
                        frame.loc[usd_paid != usd_got, RATE_COLUMNS].reset_index(drop=True),
                        frame["timestamp"].dt.floor("h").value_counts())


def stage_input(client: Client, paths: list[Path], staging: Path, period: int,
                strict: bool = False, quarantine: Path | None = None,
                show_progress: bool = True) -> StagedInput:
    """Stage every block of the input on the cluster; returns the plan of partitions."""
    blocks = read_blocks(paths).to_delayed()
    tasks = [delayed(stage_block)(b, i, staging, period, strict, quarantine)
             for i, b in enumerate(blocks)]
    summaries = run_tasks(client, client.compute(tasks), "stage input blocks",
                          show_progress)
    staged = StagedInput(staging, period, sorted(summaries, key=lambda s: s.block))
    for summary in staged.blocks:
        for key in summary.partitions:
            staged.files.setdefault(key, []).append(
                staging / "raw" / str(key) / f"{summary.block:05d}.parquet")
    if staged.rows == 0:
        raise ValueError(f"{[str(p) for p in paths]}: no valid transactions to process")
    return staged
