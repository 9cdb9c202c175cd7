//! The log: the contract's line format (`2022-12-24 07:37:53,318 I [pid] logger -
//! message`), or with `--log_format json` one JSON object a line (`time`, `level`, `pid`,
//! `logger`, `message`, and `request_id` where there is one), for the server's own
//! events, the records that runners send and what workers print to stderr alike. All
//! lines go through one writer thread, in order, so that logging never blocks a request
//! on a slow terminal or pipe and many lines leave in one write under load.

use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// How log records are written: the contract's text lines, or one JSON object a line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// The logger name of the lines workers write to their stderr (JSON format only: the
/// text format passes them through as they are).
const STDERR_LOGGER: &str = "azmlinfsrv.stderr";
/// Their level: stderr carries warnings and tracebacks as well as progress bars, and
/// nothing says which a line is; WARNING keeps them visible at the usual filter.
const STDERR_LEVEL: &str = "WARNING";

static FORMAT: OnceLock<LogFormat> = OnceLock::new();

/// The format chosen at start-up (text until `install` is called).
pub fn format() -> LogFormat {
    FORMAT.get().copied().unwrap_or_default()
}

/// Installs the global subscriber: every `tracing` event becomes one line on stdout in
/// `format`, with the event's target as the logger name and the server's own pid. An
/// event's `request_id` field is the record's request id (JSON only: the contract's
/// text lines have no place for it).
pub fn install(level: Level, format: LogFormat) {
    let _ = FORMAT.set(format);
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(LineWriter::default)
        .event_format(ContractFormat)
        .finish();
    // A second install (tests that start several servers in-process) keeps the first.
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// Maps the Python logging level names the contract accepts (`AZUREML_LOG_LEVEL`) to a
/// `tracing` level; unknown names fall back to INFO.
pub fn level_from_name(name: &str) -> Level {
    match name.trim().to_ascii_uppercase().as_str() {
        "DEBUG" | "NOTSET" => Level::DEBUG,
        "WARNING" | "WARN" => Level::WARN,
        "ERROR" | "CRITICAL" | "FATAL" => Level::ERROR,
        _ => Level::INFO,
    }
}

/// Writes one record that came from a worker (a Python `logging` record or a `print`),
/// in the same format and to the same stream as the server's own events. Waits while
/// the log queue is full: a script that floods the log slows down (its worker's pipe
/// fills up) instead of growing the server's memory.
pub async fn write_runner_record(
    time_secs: f64,
    level: &str,
    pid: u32,
    logger: &str,
    message: &str,
    request_id: Option<&str>,
) {
    let line = match format() {
        LogFormat::Text => format_line(time_secs, level_letter(level), pid, logger, message),
        LogFormat::Json => json_line(&JsonRecord {
            time: IsoTimestamp(time_secs),
            level,
            pid,
            logger,
            message,
            request_id,
            fields: None,
        }),
    };
    queue_when_room(Output::Text(line.into_bytes())).await;
}

/// Writes a line that worker `pid` printed to its stderr: in the text format as it is
/// (tracebacks printed by libraries and `print(..., file=sys.stderr)` keep their own
/// shape); in the JSON format as a record of the logger `azmlinfsrv.stderr`.
pub async fn write_runner_stderr(line: &str, pid: u32) {
    let bytes = match format() {
        LogFormat::Text => {
            let mut bytes = line.as_bytes().to_vec();
            if !line.ends_with('\n') {
                bytes.push(b'\n');
            }
            bytes
        }
        LogFormat::Json => json_line(&JsonRecord {
            time: IsoTimestamp(now_secs()),
            level: STDERR_LEVEL,
            pid,
            logger: STDERR_LOGGER,
            message: line.strip_suffix('\n').unwrap_or(line),
            request_id: None,
            fields: None,
        })
        .into_bytes(),
    };
    queue_when_room(Output::Text(bytes)).await;
}

/// Writes one record of the server's own with structured `fields` next to the message
/// (JSON format; the start-up block): `fields` must be a JSON object.
pub fn write_server_record(message: &str, fields: Option<&serde_json::Value>) {
    let line = json_line(&JsonRecord {
        time: IsoTimestamp(now_secs()),
        level: "INFO",
        pid: server_pid(),
        logger: "azmlinfsrv",
        message,
        request_id: None,
        fields,
    });
    output().send(Output::Text(line.into_bytes()));
}

/// Resolves once every line queued before the call has been written out.
pub async fn flushed() {
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    queue_when_room(Output::Written(done_tx)).await;
    let _ = done_rx.await;
}

async fn queue_when_room(mut item: Output) {
    let output = output();
    let size = item.size();
    loop {
        let queued = QUEUED_BYTES.load(Ordering::Acquire);
        // A line longer than the whole budget still goes, once the queue is empty.
        if queued == 0 || queued + size <= LOG_QUEUE_BYTES {
            QUEUED_BYTES.fetch_add(size, Ordering::AcqRel);
            match output.lines.try_send(item) {
                Ok(()) => return,
                Err(std::sync::mpsc::TrySendError::Full(back)) => {
                    QUEUED_BYTES.fetch_sub(size, Ordering::AcqRel);
                    item = back;
                }
                Err(std::sync::mpsc::TrySendError::Disconnected(_)) => {
                    QUEUED_BYTES.fetch_sub(size, Ordering::AcqRel);
                    return;
                }
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}

/// Prints start-up text (banner, settings block) unformatted.
pub fn print_plain(text: &str) {
    output().send(Output::Text(text.as_bytes().to_vec()));
}

/// Waits (briefly) until everything logged so far is written: call before exiting.
pub fn flush() {
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    output().send(Output::Flush(done_tx));
    let _ = done_rx.recv_timeout(std::time::Duration::from_secs(2));
}

enum Output {
    Text(Vec<u8>),
    Flush(std::sync::mpsc::Sender<()>),
    /// Tells an async waiter that what came before is written.
    Written(tokio::sync::oneshot::Sender<()>),
}

impl Output {
    /// The bytes it counts against `LOG_QUEUE_BYTES`.
    fn size(&self) -> usize {
        match self {
            Output::Text(bytes) => bytes.len(),
            Output::Flush(_) | Output::Written(_) => 0,
        }
    }
}

/// Lines waiting for the writer thread at most: past that, senders wait (the server's
/// own lines block, a worker's records make its reader wait), so memory stays bounded.
const LOG_QUEUE_LINES: usize = 16 * 1024;

/// Bytes waiting for the writer thread at most, for the lines workers send: lines can
/// be long (a printed data frame or array), and 16 Ki lines of 64 KiB were measured
/// to grow the server by 200 MiB while its stdout was not read.
const LOG_QUEUE_BYTES: usize = 8 * 1024 * 1024;

/// The sending side of the writer thread.
struct LogOutput {
    lines: std::sync::mpsc::SyncSender<Output>,
}

/// Bytes of `Output::Text` queued and not yet written.
static QUEUED_BYTES: AtomicUsize = AtomicUsize::new(0);

impl LogOutput {
    /// Queues the server's own lines: short and few, so they wait only for the line
    /// bound, but they are counted so that workers' records leave them room.
    fn send(&self, output: Output) {
        let size = output.size();
        QUEUED_BYTES.fetch_add(size, Ordering::AcqRel);
        if self.lines.send(output).is_err() {
            QUEUED_BYTES.fetch_sub(size, Ordering::AcqRel);
        }
    }
}

fn output() -> &'static LogOutput {
    static OUTPUT: OnceLock<LogOutput> = OnceLock::new();
    OUTPUT.get_or_init(|| {
        let (sender, receiver) = std::sync::mpsc::sync_channel(LOG_QUEUE_LINES);
        let _ = std::thread::Builder::new()
            .name("azmlinfsrv-log".into())
            .spawn(move || write_lines(receiver));
        LogOutput { lines: sender }
    })
}

/// How long the writer lets lines gather after a write: under load, lines then leave
/// in one write, and senders do not wake this thread for every line (measured: waking
/// it per access line was the largest single cost of a hello-world request).
const GATHER_TIME: std::time::Duration = std::time::Duration::from_millis(2);

/// The writer thread: writes what is queued, flushes when the queue is empty, then
/// lets the next lines gather for a moment.
fn write_lines(receiver: std::sync::mpsc::Receiver<Output>) {
    let mut stdout = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout());
    while let Ok(first) = receiver.recv() {
        let mut next = Some(first);
        while let Some(output) = next.take() {
            match output {
                // A closed stdout (piped into `head`) must not take the server down.
                Output::Text(bytes) => {
                    let _ = stdout.write_all(&bytes);
                    // Written into the buffer: once that is full, `write_all` waits for
                    // the pipe, and so the queue stays full and senders wait.
                    QUEUED_BYTES.fetch_sub(bytes.len(), Ordering::AcqRel);
                }
                Output::Flush(done) => {
                    let _ = stdout.flush();
                    let _ = done.send(());
                }
                Output::Written(done) => {
                    let _ = stdout.flush();
                    let _ = done.send(());
                }
            }
            next = receiver.try_recv().ok();
        }
        let _ = stdout.flush();
        std::thread::sleep(GATHER_TIME);
    }
}

/// Collects one formatted `tracing` event and queues it whole when dropped.
#[derive(Default)]
struct LineWriter {
    bytes: Vec<u8>,
}

impl Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if !self.bytes.is_empty() {
            output().send(Output::Text(std::mem::take(&mut self.bytes)));
        }
    }
}

/// The first letter of a Python level name, as the reference's `%(levelname).1s`.
fn level_letter(level: &str) -> char {
    level.chars().next().unwrap_or('I').to_ascii_uppercase()
}

fn format_line(time_secs: f64, letter: char, pid: u32, logger: &str, message: &str) -> String {
    let mut line = String::with_capacity(48 + logger.len() + message.len());
    use std::fmt::Write as _;
    let _ = write!(
        line,
        "{} {} [{}] {} - {}",
        Timestamp(time_secs),
        letter,
        pid,
        logger,
        message
    );
    line.push('\n');
    line
}

/// Seconds since the epoch, now.
pub fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// UTC time as `YYYY-MM-DD HH:MM:SS,mmm`, like Python's logging with `time.gmtime`.
struct Timestamp(f64);

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_utc(f, self.0, ' ', ',')?;
        Ok(())
    }
}

/// UTC time in ISO 8601 with milliseconds, `YYYY-MM-DDTHH:MM:SS.mmmZ` (JSON records).
struct IsoTimestamp(f64);

impl fmt::Display for IsoTimestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_utc(f, self.0, 'T', '.')?;
        f.write_str("Z")
    }
}

impl serde::Serialize for IsoTimestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// `time_secs` as `YYYY-MM-DD<date_time>HH:MM:SS<before_millis>mmm`, UTC.
fn write_utc(
    f: &mut fmt::Formatter<'_>,
    time_secs: f64,
    date_time: char,
    before_millis: char,
) -> fmt::Result {
    let total_millis = (time_secs * 1000.0).floor() as i64;
    let millis = total_millis.rem_euclid(1000);
    let secs = total_millis.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let second_of_day = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    write!(
        f,
        "{:04}-{:02}-{:02}{}{:02}:{:02}:{:02}{}{:03}",
        year,
        month,
        day,
        date_time,
        second_of_day / 3600,
        (second_of_day % 3600) / 60,
        second_of_day % 60,
        before_millis,
        millis
    )
}

/// One record of the JSON format, in its members' order.
#[derive(serde::Serialize)]
struct JsonRecord<'a> {
    time: IsoTimestamp,
    level: &'a str,
    pid: u32,
    logger: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
    /// More members, from a JSON object (`null` when there are none).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    fields: Option<&'a serde_json::Value>,
}

/// The record as one line of JSON (newlines in the message are escaped, so a
/// traceback stays one record).
fn json_line(record: &JsonRecord<'_>) -> String {
    let mut line = serde_json::to_string(record).unwrap_or_else(|error| {
        format!("{{\"level\":\"ERROR\",\"logger\":\"azmlinfsrv\",\"message\":\"a log record could not be written as JSON: {error}\"}}")
    });
    line.push('\n');
    line
}

/// Python's level names, which runner records carry too.
fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "ERROR",
        Level::WARN => "WARNING",
        Level::INFO => "INFO",
        Level::DEBUG | Level::TRACE => "DEBUG",
    }
}

/// Days since 1970-01-01 to a (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's algorithm): avoids a date crate for the log's and the telemetry's
/// timestamps.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Our pid, read once: `getpid` is a system call, and every log line shows it.
fn server_pid() -> u32 {
    static PID: OnceLock<u32> = OnceLock::new();
    *PID.get_or_init(std::process::id)
}

/// The `tracing` event formatter for the server's own lines.
struct ContractFormat;

impl<S, N> FormatEvent<S, N> for ContractFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let metadata = event.metadata();
        let mut fields = EventFields::default();
        event.record(&mut fields);
        if format() == LogFormat::Json {
            let extra = (!fields.others.is_empty()).then(|| {
                serde_json::Value::Object(
                    fields
                        .others
                        .iter()
                        .map(|(name, value)| (name.to_string(), value.clone().into()))
                        .collect(),
                )
            });
            let line = json_line(&JsonRecord {
                time: IsoTimestamp(now_secs()),
                level: level_name(metadata.level()),
                pid: server_pid(),
                logger: metadata.target(),
                message: &fields.message,
                request_id: fields.request_id.as_deref(),
                fields: extra.as_ref(),
            });
            return writer.write_str(&line);
        }
        write!(
            writer,
            "{} {} [{}] {} - {}",
            Timestamp(now_secs()),
            level_letter(level_name(metadata.level())),
            server_pid(),
            metadata.target(),
            fields.message
        )?;
        for (name, value) in &fields.others {
            write!(writer, " {name}={value}")?;
        }
        writeln!(writer)
    }
}

/// An event's fields: its message, its request id, and any others by name.
#[derive(Default)]
struct EventFields {
    message: String,
    request_id: Option<String>,
    others: Vec<(&'static str, String)>,
}

impl tracing::field::Visit for EventFields {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.keep(field, value.to_string());
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        self.keep(field, format!("{value:?}"));
    }
}

impl EventFields {
    fn keep(&mut self, field: &tracing::field::Field, value: String) {
        match field.name() {
            "message" => self.message = value,
            "request_id" => self.request_id = Some(value),
            name => self.others.push((name, value)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_matches_python_gmtime_format() {
        // 2022-12-24 07:37:53.318 UTC, the example in the contract.
        assert_eq!(
            Timestamp(1_671_867_473.318_5).to_string(),
            "2022-12-24 07:37:53,318"
        );
        assert_eq!(Timestamp(0.0).to_string(), "1970-01-01 00:00:00,000");
        assert_eq!(
            Timestamp(951_782_400.0).to_string(),
            "2000-02-29 00:00:00,000"
        );
    }

    #[test]
    fn runner_line_has_contract_shape() {
        let line = format_line(0.5, level_letter("WARNING"), 42, "azmlinfsrv.print", "hi");
        assert_eq!(
            line,
            "1970-01-01 00:00:00,500 W [42] azmlinfsrv.print - hi\n"
        );
    }

    #[test]
    fn json_records_have_every_member_on_one_line() {
        let fields = serde_json::json!({"settings": {"worker_count": "1"}});
        let line = json_line(&JsonRecord {
            time: IsoTimestamp(1_671_867_473.318_5),
            level: "INFO",
            pid: 42,
            logger: "azmlinfsrv.print",
            message: "two\nlines \"quoted\"",
            request_id: Some("abc"),
            fields: Some(&fields),
        });
        assert_eq!(
            line,
            "{\"time\":\"2022-12-24T07:37:53.318Z\",\"level\":\"INFO\",\"pid\":42,\
             \"logger\":\"azmlinfsrv.print\",\"message\":\"two\\nlines \\\"quoted\\\"\",\
             \"request_id\":\"abc\",\"settings\":{\"worker_count\":\"1\"}}\n"
        );
        let bare = json_line(&JsonRecord {
            time: IsoTimestamp(0.0),
            level: "WARNING",
            pid: 1,
            logger: "azmlinfsrv",
            message: "m",
            request_id: None,
            fields: None,
        });
        assert_eq!(
            bare,
            "{\"time\":\"1970-01-01T00:00:00.000Z\",\"level\":\"WARNING\",\"pid\":1,\"logger\":\"azmlinfsrv\",\"message\":\"m\"}\n"
        );
    }

    #[test]
    fn level_names_map_like_python() {
        assert_eq!(level_from_name("debug"), Level::DEBUG);
        assert_eq!(level_from_name("WARNING"), Level::WARN);
        assert_eq!(level_from_name("CRITICAL"), Level::ERROR);
        assert_eq!(level_from_name("bogus"), Level::INFO);
    }
}
