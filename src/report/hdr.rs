//! HdrHistogram's own formats: the percentile distribution (`.hgrm`, as
//! wrk2 and HdrHistogram's `outputPercentileDistribution` print it, values
//! in milliseconds) and the interval log (`.hlog`, version 1.3, values in
//! microseconds, readable by HistogramLogProcessor and HdrHistogram_rust's
//! `IntervalLogIterator`).

use std::io::{self, Write};
use std::time::Duration;

use chrono::{DateTime, Utc};
use hdrhistogram::Histogram;
use hdrhistogram::serialization::interval_log::IntervalLogWriterBuilder;
use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};

use crate::record::IntervalRow;

/// Microseconds per millisecond: the files show milliseconds.
const US_PER_MS: f64 = 1000.0;
/// Percentile ticks per half distance, HdrHistogram's default.
const TICKS_PER_HALF_DISTANCE: u32 = 5;

/// Writes `h` (microseconds) as a percentile distribution in milliseconds.
pub fn write_hgrm(w: &mut dyn Write, h: &Histogram<u64>) -> io::Result<()> {
    writeln!(
        w,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    )?;
    let mut total = 0u64;
    if !h.is_empty() {
        for v in h.iter_quantiles(TICKS_PER_HALF_DISTANCE) {
            total += v.count_since_last_iteration();
            let value_ms = v.value_iterated_to() as f64 / US_PER_MS;
            let q = v.quantile_iterated_to();
            if q < 1.0 {
                writeln!(
                    w,
                    "{:12.3} {:2.12} {:10} {:14.2}",
                    value_ms,
                    q,
                    total,
                    1.0 / (1.0 - q)
                )?;
            } else {
                writeln!(w, "{:12.3} {:2.12} {:10}", value_ms, q, total)?;
            }
        }
    }
    let (mean, stdev) = if h.is_empty() {
        (0.0, 0.0)
    } else {
        (h.mean(), h.stdev())
    };
    writeln!(
        w,
        "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]",
        mean / US_PER_MS,
        stdev / US_PER_MS
    )?;
    writeln!(
        w,
        "#[Max     = {:12.3}, Total count    = {:12}]",
        h.max() as f64 / US_PER_MS,
        h.len()
    )?;
    // Sub-buckets per bucket: the power of two that holds 2 * 10^sigfig.
    let sub_buckets = (2 * 10u64.pow(u32::from(h.sigfig()))).next_power_of_two();
    writeln!(
        w,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        h.buckets(),
        sub_buckets
    )
}

/// Writes a run's interval histograms as an interval log.
pub fn write_hlog(
    w: &mut dyn Write,
    started_at: &DateTime<Utc>,
    intervals: &[IntervalRow],
) -> io::Result<()> {
    write_hlog_header(w, started_at)?;
    for row in intervals {
        write_hlog_interval(w, row)?;
    }
    Ok(())
}

/// Writes an interval log's header for a run started at `started_at`: the
/// lines before the first interval.
pub fn write_hlog_header(w: &mut dyn Write, started_at: &DateTime<Utc>) -> io::Result<()> {
    let start = std::time::SystemTime::from(*started_at);
    let start_s = start
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    writeln!(w, "#[Histogram log format version 1.3]")?;
    writeln!(w, "#[Latency from the intended send time, in microseconds]")?;
    writeln!(w, "#[StartTime: {start_s:.3} (seconds since epoch)]")?;
    writeln!(w, "#[BaseTime: {start_s:.3} (seconds since epoch)]")?;
    writeln!(
        w,
        "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\""
    )
}

/// Writes one interval's line of an interval log (after the header): so a
/// log can grow as the run goes.
pub fn write_hlog_interval(mut w: &mut dyn Write, row: &IntervalRow) -> io::Result<()> {
    let h: Histogram<u64> = Deserializer::new()
        .deserialize(&mut &row.latency_hist_v2[..])
        .map_err(|e| io::Error::other(format!("interval {}: {e:?}", row.index)))?;
    let mut serializer = V2DeflateSerializer::new();
    // The builder writes nothing of its own: the header is ours, above.
    let mut log = IntervalLogWriterBuilder::new().begin_log_with(&mut w, &mut serializer)?;
    log.write_histogram(
        &h,
        Duration::from_secs_f64(row.start_s),
        Duration::from_secs_f64(row.duration_s),
        None,
    )
    .map_err(|e| io::Error::other(format!("interval {}: {e}", row.index)))
}
