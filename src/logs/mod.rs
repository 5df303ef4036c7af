//! Access logs from anywhere, read the way the harness reads its own
//! gateways' logs: in nginx's `log_format` language or HAProxy's
//! `log-format`, streamed in bounded memory.
//!
//! - [`vars`]: the names each language has, and what each means.
//! - [`mod@format`]: a format compiled from `--format` (a preset, a string, an
//!   nginx directive), and the format a gateway the harness ran wrote.
//! - [`value`]: one logged value read (seconds, milliseconds, lists, times).
//! - [`mod@line`]: one line read with a format.
//! - [`route`]: a request's route, its ids collapsed.
//! - [`tally`]: the streaming counts per interval, route and key.
//!
//! Takes files (plain, gzip, or `-` for stdin) and a [`format::Format`];
//! hands on a [`tally::Tally`] ([`read`]). What the counts mean (the
//! censored fit, the knee) is `analysis::censored`'s; the report folder is
//! `report::logs`'s.

pub mod format;
pub mod line;
pub mod route;
pub mod tally;
pub mod value;
pub mod vars;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use format::{Format, Segment};
use tally::{Has, Options, Tally};
use vars::Field;

/// Longest line read, bytes: a longer one is counted malformed and
/// skipped to its newline without being held.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// The read buffer per input, bytes.
const BUFFER_BYTES: usize = 1 << 18;

/// One input: a file, or stdin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A file; gzip when it starts with gzip's magic bytes.
    File(PathBuf),
    /// `-`.
    Stdin,
}

impl Input {
    /// `-` is stdin; anything else a path.
    pub fn from_arg(arg: &Path) -> Input {
        if arg == Path::new("-") {
            Input::Stdin
        } else {
            Input::File(arg.to_path_buf())
        }
    }

    /// As the report names it.
    pub fn name(&self) -> String {
        match self {
            Input::File(p) => p.display().to_string(),
            Input::Stdin => "-".to_string(),
        }
    }
}

/// What the format logs.
pub fn has(format: &Format) -> Has {
    let mut has = Has::default();
    for segment in &format.segments {
        if let Segment::Var(v) = segment {
            match v.field {
                Field::Time(_) => has.time = true,
                Field::Key => has.key = true,
                Field::RequestTime => has.request_time = true,
                Field::UpstreamTime => has.upstream_time = true,
                Field::UpstreamStatus => has.upstream_status = true,
                Field::Timer(vars::Timer::Active | vars::Timer::Total) => {
                    has.request_time = true;
                    has.upstream_time = true;
                }
                Field::Timer(vars::Timer::Response) => has.upstream_time = true,
                _ => {}
            }
        }
    }
    has
}

/// A file's lines could not all be read; the lines before are kept.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadProblem {
    /// The input.
    pub file: String,
    /// Lines read from it before the problem.
    pub lines: u64,
    /// What happened.
    pub error: String,
}

/// Opens every input first, so a missing file is refused before any line
/// is read (exit 2, naming it).
pub fn open(inputs: &[Input]) -> Result<Vec<Box<dyn std::io::Read>>> {
    inputs
        .iter()
        .map(|input| -> Result<Box<dyn std::io::Read>> {
            match input {
                Input::Stdin => Ok(Box::new(std::io::stdin())),
                Input::File(path) => match std::fs::File::open(path) {
                    Ok(file) if file.metadata().is_ok_and(|m| m.is_dir()) => {
                        Err(Error::Usage(format!(
                            "{}: is a folder, not a log: give the access log inside it (a run's report folder keeps it as access.log)",
                            path.display()
                        )))
                    }
                    Ok(file) => Ok(Box::new(file)),
                    Err(e) => Err(Error::Usage(format!(
                        "{}: {e}: give an access log to read (plain, .gz, or - for stdin)",
                        path.display()
                    ))),
                },
            }
        })
        .collect()
}

/// What streaming the inputs gave.
#[derive(Debug)]
pub struct Read {
    /// The counts.
    pub tally: Tally,
    /// Lines read per input, in order.
    pub lines_per_input: Vec<u64>,
    /// Inputs not read to their end.
    pub problems: Vec<ReadProblem>,
}

/// Streams every input through `format` into one tally. A file that
/// cannot be read to its end (a cut gzip) keeps the lines read before and
/// is named in the problems handed back.
pub fn read(
    inputs: &[Input],
    readers: Vec<Box<dyn std::io::Read>>,
    format: &Format,
    options: Options,
) -> Read {
    let mut tally = Tally::new(options, has(format));
    let mut problems = Vec::new();
    let mut lines_per_input = Vec::new();
    for (input, reader) in inputs.iter().zip(readers) {
        let name = input.name();
        let before = tally.lines;
        if let Err(e) = read_one(reader, &name, format, &mut tally) {
            problems.push(ReadProblem {
                file: name,
                lines: tally.lines - before,
                error: e.to_string(),
            });
        }
        lines_per_input.push(tally.lines - before);
    }
    Read {
        tally,
        lines_per_input,
        problems,
    }
}

/// The first bytes of a log file (decompressed when it is gzip), for
/// telling its format.
pub fn sample(path: &Path, bytes: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut buffered = BufReader::new(std::fs::File::open(path)?);
    let mut out = Vec::new();
    let read = if buffered.fill_buf()?.starts_with(&[0x1f, 0x8b]) {
        flate2::read::MultiGzDecoder::new(buffered)
            .take(bytes)
            .read_to_end(&mut out)
    } else {
        buffered.take(bytes).read_to_end(&mut out)
    };
    match read {
        // A file cut short (a .gz copied while it was written) still tells
        // its format by what it has; reading it whole reports the cut.
        Err(_) if !out.is_empty() => Ok(out),
        Err(e) => Err(e),
        Ok(_) => Ok(out),
    }
}

/// One input, decompressed when it is gzip.
fn read_one(
    reader: Box<dyn std::io::Read>,
    name: &str,
    format: &Format,
    tally: &mut Tally,
) -> std::io::Result<()> {
    let mut buffered = BufReader::with_capacity(BUFFER_BYTES, reader);
    let gzip = buffered.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    if gzip {
        // Multi-member: logrotate's and `cat a.gz b.gz`'s files are several.
        let decoder = flate2::read::MultiGzDecoder::new(buffered);
        lines(
            BufReader::with_capacity(BUFFER_BYTES, decoder),
            name,
            format,
            tally,
        )
    } else {
        lines(buffered, name, format, tally)
    }
}

/// Splits a stream into lines and reads each. A line that lies whole in
/// the reader's buffer is read in place; one across buffers is gathered
/// (up to [`MAX_LINE_BYTES`]).
pub fn lines(
    mut reader: impl BufRead,
    name: &str,
    format: &Format,
    tally: &mut Tally,
) -> std::io::Result<()> {
    let mut partial: Vec<u8> = Vec::new();
    let mut too_long = false;
    let mut number = 0u64;
    loop {
        let buffer = reader.fill_buf()?;
        if buffer.is_empty() {
            if !partial.is_empty() || too_long {
                number += 1;
                one(&partial, too_long, name, number, format, tally);
            }
            return Ok(());
        }
        let (used, done) = match memchr::memchr(b'\n', buffer) {
            Some(at) => (at + 1, true),
            None => (buffer.len(), false),
        };
        let chunk = &buffer[..used - usize::from(done)];
        if done && partial.is_empty() && !too_long {
            number += 1;
            one(chunk, false, name, number, format, tally);
        } else {
            if partial.len() + chunk.len() > MAX_LINE_BYTES {
                too_long = true;
                partial.clear();
            } else if !too_long {
                partial.extend_from_slice(chunk);
            }
            if done {
                number += 1;
                one(&partial, too_long, name, number, format, tally);
                partial.clear();
                too_long = false;
            }
        }
        reader.consume(used);
    }
}

/// Reads one line into the tally; blank lines are skipped.
fn one(text: &[u8], too_long: bool, name: &str, number: u64, format: &Format, tally: &mut Tally) {
    if too_long {
        let reason = || format!("longer than {MAX_LINE_BYTES} bytes");
        tally.malformed(name, number, reason, b"");
        return;
    }
    if text.iter().all(u8::is_ascii_whitespace) {
        return;
    }
    match line::read(format, text) {
        Ok(parsed) => tally.add(&parsed),
        Err(e) => tally.malformed(name, number, || e.describe(format), text),
    }
}

/// The format a log was written in, from the file the harness writes
/// beside it (`access.log.format` beside `access.log`), if there is one:
/// its first line that is not a `#` comment.
pub fn format_beside(log: &Path) -> Option<String> {
    let mut name = log.file_name()?.to_os_string();
    name.push(".format");
    let text = std::fs::read_to_string(log.with_file_name(name)).ok()?;
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
}

/// The preset most of a log's first lines are in, and how many of them,
/// for a log given without `--format`; `None` when no preset reads at
/// least half of them.
pub fn detect(sample: &[u8], key: Option<&str>) -> Option<(Format, usize, usize)> {
    let lines: Vec<&[u8]> = sample
        .split(|&b| b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .take(64)
        .collect();
    if lines.is_empty() {
        return None;
    }
    format::PRESETS
        .iter()
        .filter_map(|(name, ..)| format::compile(name, key).ok())
        .map(|f| {
            let read = lines.iter().filter(|l| line::read(&f, l).is_ok()).count();
            (f, read, lines.len())
        })
        .filter(|(_, read, total)| read * 2 >= *total && *read > 0)
        .max_by_key(|(_, read, _)| *read)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn options() -> Options {
        Options {
            interval_us: 1_000_000,
            slow_us: 500_000,
            seed: 1,
        }
    }

    const LINE: &str = "2024-01-31T13:55:36+00:00 key=ui method=GET path=/a status=200 rt=0.010 us=200 urt=0.009 acct=0.009 id=-\n";

    #[test]
    fn plain_gzip_and_split_lines_read_alike() {
        let format = format::compile("contend", None).unwrap();
        let text = format!("{LINE}{LINE}\n  \ngarbage\n{}", LINE.trim_end());
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(format!("{text}\n").as_bytes()).unwrap();
        let mut gzipped = gz.finish().unwrap();
        // A second gzip member, as logrotate appends.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(LINE.as_bytes()).unwrap();
        gzipped.extend(gz.finish().unwrap());
        let inputs = [Input::Stdin, Input::Stdin];
        let readers: Vec<Box<dyn std::io::Read>> = vec![
            Box::new(std::io::Cursor::new(text.clone().into_bytes())),
            Box::new(std::io::Cursor::new(gzipped)),
        ];
        let Read {
            tally,
            problems,
            lines_per_input,
        } = read(&inputs, readers, &format, options());
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(lines_per_input, [4, 5]);
        assert_eq!((tally.lines, tally.malformed), (9, 2));
        assert_eq!(tally.malformed_samples[0].line, 5);
        // A buffer of 7 bytes splits every line across reads.
        let mut small = Tally::new(options(), has(&format));
        let reader = BufReader::with_capacity(7, text.as_bytes());
        lines(reader, "-", &format, &mut small).unwrap();
        assert_eq!((small.lines, small.malformed), (4, 1));
        assert_eq!(small.totals.requests, 3);
    }

    #[test]
    fn a_cut_gzip_keeps_the_lines_before() {
        let format = format::compile("contend", None).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        for _ in 0..2000 {
            gz.write_all(LINE.as_bytes()).unwrap();
        }
        let whole = gz.finish().unwrap();
        let cut = whole[..whole.len() / 2].to_vec();
        let Read {
            tally, problems, ..
        } = read(
            &[Input::Stdin],
            vec![Box::new(std::io::Cursor::new(cut))],
            &format,
            options(),
        );
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(tally.totals.requests > 0 && tally.totals.requests < 2000);
        assert_eq!(problems[0].lines, tally.lines);

        // A cut file shorter than the sample still tells its format.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cut.log.gz");
        std::fs::write(&path, &whole[..whole.len() / 2]).unwrap();
        let text = sample(&path, 1 << 30).expect("the lines before the cut");
        assert!(text.starts_with(LINE.as_bytes()), "{:?}", &text[..80]);
        assert!(detect(&text, None).is_some());
        // A file cut before any line tells nothing: the error stays.
        std::fs::write(&path, &whole[..10]).unwrap();
        assert!(sample(&path, 1 << 30).is_err());
    }

    #[test]
    fn a_line_too_long_is_counted_not_held() {
        let format = format::compile("contend", None).unwrap();
        let long = "x".repeat(MAX_LINE_BYTES + 10);
        let text = format!("{LINE}{long}\n{LINE}");
        let mut tally = Tally::new(options(), has(&format));
        lines(
            BufReader::with_capacity(4096, text.as_bytes()),
            "f",
            &format,
            &mut tally,
        )
        .unwrap();
        assert_eq!((tally.lines, tally.malformed), (3, 1));
        assert_eq!(tally.malformed_samples[0].line, 2);
        assert!(tally.malformed_samples[0].reason.contains("longer than"));
    }

    #[test]
    fn the_preset_of_a_log_is_found() {
        let combined =
            "10.0.0.1 - - [31/Jan/2024:13:55:36 +0000] \"GET / HTTP/1.1\" 200 5 \"-\" \"curl\"\n";
        let (f, read, total) = detect(combined.repeat(3).as_bytes(), None).unwrap();
        assert_eq!((f.name.as_str(), read, total), ("combined", 3, 3));
        let (f, ..) = detect(LINE.as_bytes(), None).unwrap();
        assert_eq!(f.name, "contend");
        assert!(detect(b"nothing like a log\n", None).is_none());
    }
}
