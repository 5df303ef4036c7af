//! A log format, compiled: nginx's `log_format` language (`$request_time`,
//! `${status}`, `log_format main escape=json '...';`) or HAProxy's
//! `log-format` (`%Ta`, `%{+Q}r`, `%[req.hdr(x-api-key)]`), the presets
//! (`combined`, `main`, `nginx-timed`, `contend`, `haproxy`), and the
//! format a gateway the harness ran wrote its log in.
//!
//! Takes the text of `--format` (a preset's name, a format string, or an
//! nginx `log_format` directive), and the `--key` variable; hands on a
//! [`Format`]: literals and variables in order, each variable with what it
//! means to the analysis. A variable neither gateway has is an error
//! naming it (and the closest name it knows). Reading lines with it is
//! [`super::line`]'s.

use super::vars::{self, Field};
use crate::error::{Error, Result};

/// Which template language a format is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// nginx's `log_format`.
    Nginx,
    /// HAProxy's `log-format`.
    Haproxy,
}

/// One part of a compiled format.
#[derive(Debug, Clone, PartialEq)]
pub enum Segment {
    /// Text written as is.
    Literal(Vec<u8>),
    /// A variable's value.
    Var(Var),
}

/// A variable of a compiled format.
#[derive(Debug, Clone, PartialEq)]
pub struct Var {
    /// As written: `$request_time`, `%Ta`, `%[req.hdr(x-api-key)]`.
    pub name: String,
    /// What it means to the analysis.
    pub field: Field,
    /// nginx may write several values, `0.5, 0.3` or `502 : 200`.
    pub multi: bool,
    /// HAProxy writes nothing (and no space after it) when nothing was
    /// captured (`%hr`, `%hs`).
    pub optional: bool,
}

/// A compiled log format.
#[derive(Debug, Clone, PartialEq)]
pub struct Format {
    /// Its language.
    pub language: Language,
    /// The preset's name, or `custom`.
    pub name: String,
    /// The format string.
    pub text: String,
    /// Its parts in order.
    pub segments: Vec<Segment>,
    /// The variable read as the API key, when the format has one.
    pub key: Option<String>,
}

/// nginx's built-in `combined`.
const COMBINED: &str = "$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent \"$http_referer\" \"$http_user_agent\"";

/// The presets `--format` takes by name: (name, language, text, what it is).
pub const PRESETS: [(&str, Language, &str, &str); 5] = [
    (
        "contend",
        Language::Nginx,
        "$time_iso8601 key=$http_x_api_key method=$request_method path=$request_uri status=$status rt=$request_time us=$upstream_status urt=$upstream_response_time acct=$contend_accounted id=$http_x_request_id",
        "the reference gateway's line (`contend gateway`)",
    ),
    (
        "nginx-timed",
        Language::Nginx,
        "$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent \"$http_referer\" \"$http_user_agent\" rt=$request_time uct=\"$upstream_connect_time\" uht=\"$upstream_header_time\" urt=\"$upstream_response_time\"",
        "nginx's admin guide `upstream_time`: combined, then rt= uct= uht= urt=",
    ),
    (
        "main",
        Language::Nginx,
        "$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent \"$http_referer\" \"$http_user_agent\" \"$http_x_forwarded_for\"",
        "the `main` of nginx's packaged nginx.conf",
    ),
    (
        "combined",
        Language::Nginx,
        COMBINED,
        "nginx's built-in `combined` (no timings)",
    ),
    (
        "haproxy",
        Language::Haproxy,
        "%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %hr %hs %{+Q}r",
        "HAProxy's `option httplog`",
    ),
];

/// Compiles `--format`'s text: a preset's name, `nginx:`/`haproxy:` and a
/// format string, an nginx `log_format` directive, or a format string
/// whose language is told by its variables (`$name` is nginx's, `%X`
/// HAProxy's). `key` names the variable read as the API key (default:
/// `$http_x_api_key`, or a HAProxy sample that reads `x-api-key`).
pub fn compile(text: &str, key: Option<&str>) -> Result<Format> {
    let text = text.trim();
    if let Some((name, language, preset, _)) = PRESETS.iter().find(|p| p.0 == text) {
        return finish(*language, name, preset, key);
    }
    let (language, body) = if let Some(rest) = text.strip_prefix("nginx:") {
        (Language::Nginx, rest.trim().to_string())
    } else if let Some(rest) = text.strip_prefix("haproxy:") {
        (Language::Haproxy, unquote_haproxy(rest.trim()))
    } else if text.starts_with("log_format") {
        (Language::Nginx, nginx_directive(text)?)
    } else if has_nginx_variable(text) {
        (Language::Nginx, text.to_string())
    } else if text.contains('%') {
        (Language::Haproxy, text.to_string())
    } else {
        return Err(Error::Usage(format!(
            "--format {text:?} is neither a preset ({}) nor a format with variables: give nginx's \
             log_format string ('$remote_addr [$time_local] \"$request\" $status $request_time') or \
             HAProxy's log-format ('%ci [%tr] %ST %Ta %tsc')",
            preset_names()
        )));
    };
    finish(language, "custom", &body, key)
}

/// The presets' names, for messages.
pub fn preset_names() -> String {
    PRESETS.map(|p| p.0).join(", ")
}

fn finish(language: Language, name: &str, text: &str, key: Option<&str>) -> Result<Format> {
    let mut segments = match language {
        Language::Nginx => nginx_segments(text)?,
        Language::Haproxy => haproxy_segments(text)?,
    };
    let key = mark_key(&mut segments, language, key)?;
    Ok(Format {
        language,
        name: name.to_string(),
        text: text.to_string(),
        segments,
        key,
    })
}

fn has_nginx_variable(text: &str) -> bool {
    text.as_bytes()
        .windows(2)
        .any(|w| w[0] == b'$' && (w[1] == b'{' || w[1].is_ascii_alphabetic()))
}

/// Marks the key variable; an explicit `--key` the format lacks is an error.
fn mark_key(
    segments: &mut [Segment],
    language: Language,
    key: Option<&str>,
) -> Result<Option<String>> {
    let is_default = |v: &Var| match language {
        Language::Nginx => v.name == "$http_x_api_key",
        Language::Haproxy => {
            v.name.starts_with("%[") && v.name.to_ascii_lowercase().contains("x-api-key")
        }
    };
    let wanted = |v: &Var| match key {
        Some(k) => v.name == k.trim() || v.name == format!("${}", k.trim()),
        None => is_default(v),
    };
    for segment in segments.iter_mut() {
        if let Segment::Var(v) = segment
            && wanted(v)
        {
            v.field = Field::Key;
            return Ok(Some(v.name.clone()));
        }
    }
    match key {
        None => Ok(None),
        Some(k) => {
            let names: Vec<&str> = segments
                .iter()
                .filter_map(|s| match s {
                    Segment::Var(v) => Some(v.name.as_str()),
                    Segment::Literal(_) => None,
                })
                .collect();
            Err(Error::Usage(format!(
                "--key {k}: the format has no such variable; it has {}: give one of them, or a \
                 format that logs the key (nginx: $http_x_api_key)",
                names.join(" ")
            )))
        }
    }
}

/// The format string of an nginx `log_format NAME [escape=..] 'a' 'b';`
/// directive: its quoted parts joined.
fn nginx_directive(text: &str) -> Result<String> {
    let body = text
        .trim_start_matches("log_format")
        .trim()
        .trim_end_matches(';');
    let mut parts = String::new();
    let mut rest = body;
    let mut words = 0;
    while !rest.trim_start().is_empty() {
        rest = rest.trim_start();
        let quote = rest.as_bytes()[0];
        if quote == b'\'' || quote == b'"' {
            let Some(end) = rest[1..].find(quote as char) else {
                return Err(Error::Usage(format!(
                    "--format: the log_format directive has an unclosed {} quote: {text}",
                    quote as char
                )));
            };
            parts.push_str(&rest[1..1 + end]);
            rest = &rest[end + 2..];
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let word = &rest[..end];
            // The name, then `escape=...`; a bare word after them is a part.
            if words > 0 && !word.starts_with("escape=") {
                parts.push_str(word);
            }
            words += 1;
            rest = &rest[end..];
        }
    }
    if parts.is_empty() {
        return Err(Error::Usage(format!(
            "--format: the log_format directive has no format string: {text}"
        )));
    }
    Ok(parts)
}

/// Pushes a literal byte, joining it to the literal before.
fn push_literal(segments: &mut Vec<Segment>, bytes: &[u8]) {
    if let Some(Segment::Literal(l)) = segments.last_mut() {
        l.extend_from_slice(bytes);
    } else {
        segments.push(Segment::Literal(bytes.to_vec()));
    }
}

/// Pushes a variable; two with nothing between them cannot be told apart.
fn push_var(segments: &mut Vec<Segment>, var: Var, text: &str) -> Result<()> {
    if let Some(Segment::Var(before)) = segments.last() {
        return Err(Error::Usage(format!(
            "--format: {}{} have nothing between them, so a line cannot tell where one ends: \
             put a separator between them ({text})",
            before.name, var.name
        )));
    }
    segments.push(Segment::Var(var));
    Ok(())
}

fn nginx_segments(text: &str) -> Result<Vec<Segment>> {
    let bytes = text.as_bytes();
    let mut segments = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' {
            push_literal(&mut segments, &bytes[i..=i]);
            i += 1;
            continue;
        }
        let (name, next) = if bytes.get(i + 1) == Some(&b'{') {
            let Some(end) = text[i + 2..].find('}') else {
                return Err(Error::Usage(format!(
                    "--format: `${{` at column {} is not closed with `}}`: {text}",
                    i + 1
                )));
            };
            (&text[i + 2..i + 2 + end], i + 3 + end)
        } else {
            let len = bytes[i + 1..]
                .iter()
                .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
                .count();
            (&text[i + 1..i + 1 + len], i + 1 + len)
        };
        if name.is_empty() {
            return Err(Error::Usage(format!(
                "--format: `$` at column {} is not followed by a variable name (nginx writes a \
                 literal dollar only through a variable): {text}",
                i + 1
            )));
        }
        let Some((field, multi)) = vars::nginx(name) else {
            let hint = vars::closest(name, vars::nginx_names())
                .map(|n| format!("did you mean ${n}? "))
                .unwrap_or_default();
            return Err(Error::Usage(format!(
                "--format: unknown variable ${name} (column {}): nginx has no such variable. \
                 {hint}Headers are $http_NAME (lower case, `-` as `_`); the timings are \
                 $request_time and $upstream_response_time",
                i + 1
            )));
        };
        let var = Var {
            name: format!("${name}"),
            field,
            multi,
            optional: false,
        };
        push_var(&mut segments, var, text)?;
        i = next;
    }
    Ok(segments)
}

/// A HAProxy `log-format` argument as a config file writes it: quotes
/// removed and `\"` or `\ ` unescaped.
fn unquote_haproxy(text: &str) -> String {
    let inner = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text);
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn haproxy_segments(text: &str) -> Result<Vec<Segment>> {
    let bytes = text.as_bytes();
    let mut segments = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            push_literal(&mut segments, &bytes[i..=i]);
            i += 1;
            continue;
        }
        if bytes.get(i + 1) == Some(&b'%') {
            push_literal(&mut segments, b"%");
            i += 2;
            continue;
        }
        let column = i + 1;
        let mut j = i + 1;
        let mut quoted = false;
        if bytes.get(j) == Some(&b'{') {
            let Some(end) = text[j..].find('}') else {
                return Err(Error::Usage(format!(
                    "--format: `%{{` at column {column} is not closed with `}}`: {text}"
                )));
            };
            quoted = text[j + 1..j + end].split(',').any(|f| f.trim() == "+Q");
            j += end + 1;
        }
        let (name, field, optional, next) = if bytes.get(j) == Some(&b'[') {
            let Some(end) = text[j..].find(']') else {
                return Err(Error::Usage(format!(
                    "--format: `%[` at column {column} is not closed with `]`: {text}"
                )));
            };
            let name = format!("%{}", &text[j..=j + end]);
            (name, Field::Other, false, j + end + 1)
        } else {
            let len = bytes[j..]
                .iter()
                .take_while(|b| b.is_ascii_alphabetic())
                .count();
            let alias = &text[j..j + len];
            let Some(field) = vars::haproxy(alias) else {
                let hint = vars::closest(alias, vars::haproxy_names())
                    .map(|n| format!("did you mean %{n}? "))
                    .unwrap_or_default();
                return Err(Error::Usage(format!(
                    "--format: unknown HAProxy variable %{alias} (column {column}). {hint}The \
                     timings are %TR/%Tw/%Tc/%Tr/%Ta, the status %ST, the termination state %tsc; \
                     a header is a sample: %[req.hdr(x-api-key)]"
                )));
            };
            (
                format!("%{alias}"),
                field,
                vars::HAPROXY_OPTIONAL.contains(&alias),
                j + len,
            )
        };
        if quoted {
            push_literal(&mut segments, b"\"");
        }
        let var = Var {
            name,
            field,
            multi: false,
            optional,
        };
        push_var(&mut segments, var, text)?;
        if quoted {
            push_literal(&mut segments, b"\"");
        }
        i = next;
    }
    Ok(segments)
}

/// The format a gateway the harness ran wrote its access log in, as
/// `--format` takes it: the reference gateway's line, the `log_format`
/// its `access_log` names in an nginx config, a HAProxy config's
/// `log-format` (or `option httplog`'s). `None` when the config does not
/// say, or the log is JSON lines (the reference gateway's
/// `access_log_format = "json"`).
pub fn written_by(kind: &str, config: &str) -> Option<String> {
    match kind {
        // JSON lines have no format string to read them with.
        "reference" if config.contains("access_log_format = \"json\"") => None,
        "reference" => Some(PRESETS[0].2.to_string()),
        "nginx" => nginx_config_format(config),
        "haproxy" => haproxy_config_format(config),
        _ => None,
    }
}

/// The nginx directives named `name` in `config`, each as its text up to `;`.
fn directives<'a>(config: &'a str, name: &str) -> Vec<&'a str> {
    let mut found = Vec::new();
    for line_start in config.lines() {
        let line = line_start.trim_start();
        if line.starts_with('#') {
            continue;
        }
        if line
            .strip_prefix(name)
            .is_some_and(|r| r.starts_with(char::is_whitespace))
        {
            // A directive may run over lines: take the text up to its `;`.
            let at = line.as_ptr() as usize - config.as_ptr() as usize;
            let rest = &config[at..];
            let end = rest.find(';').map_or(rest.len(), |e| e + 1);
            found.push(&rest[..end]);
        }
    }
    found
}

fn nginx_config_format(config: &str) -> Option<String> {
    let name = directives(config, "access_log")
        .iter()
        .filter_map(|d| {
            let mut words = d.trim_end_matches(';').split_whitespace().skip(1);
            let path = words.next()?;
            (path != "off").then(|| words.next().unwrap_or("combined").to_string())
        })
        .next()?;
    if name == "combined" {
        return Some(COMBINED.to_string());
    }
    directives(config, "log_format").into_iter().find_map(|d| {
        let named = d.split_whitespace().nth(1) == Some(name.as_str());
        named.then(|| nginx_directive(d).ok()).flatten()
    })
}

fn haproxy_config_format(config: &str) -> Option<String> {
    let mut found = None;
    // `http-request capture SAMPLE len N` fills capture slots in order; a
    // log-format that logs `%[capture.req.hdr(i)]` logs slot i's sample, so
    // it is written as that sample (`%[req.hdr(x-api-key)]`), which names
    // the header it holds.
    let mut captures = Vec::new();
    for line in config.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("log-format ") {
            found = Some(unquote_haproxy(rest.trim()));
        } else if line.starts_with("option httplog") && found.is_none() {
            found = Some(PRESETS[4].2.to_string());
        } else if let Some(rest) = line.strip_prefix("http-request capture ") {
            if let Some(sample) = rest.split_whitespace().next() {
                captures.push(sample.to_string());
            }
        }
    }
    found.map(|mut f| {
        for (slot, sample) in captures.iter().enumerate() {
            f = f.replace(
                &format!("%[capture.req.hdr({slot})]"),
                &format!("%[{sample}]"),
            );
        }
        format!("haproxy:{f}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars_of(f: &Format) -> Vec<(&str, Field)> {
        f.segments
            .iter()
            .filter_map(|s| match s {
                Segment::Var(v) => Some((v.name.as_str(), v.field)),
                Segment::Literal(_) => None,
            })
            .collect()
    }

    #[test]
    fn a_haproxy_capture_slot_is_written_as_the_sample_it_holds() {
        let cfg = "frontend gateway\n    http-request capture req.hdr(x-api-key) len 128\n    \
                   http-request capture req.hdr(x-request-id) len 128\n    \
                   log-format \"%t key=%[capture.req.hdr(0)] status=%ST id=%[capture.req.hdr(1)]\"\n";
        let written = written_by("haproxy", cfg).expect("a format");
        assert_eq!(
            written,
            "haproxy:%t key=%[req.hdr(x-api-key)] status=%ST id=%[req.hdr(x-request-id)]"
        );
        let f = compile(&written, None).expect("compiles");
        assert!(
            vars_of(&f).contains(&("%[req.hdr(x-api-key)]", Field::Key)),
            "{:?}",
            vars_of(&f)
        );
    }

    #[test]
    fn every_preset_compiles() {
        for (name, language, _, _) in PRESETS {
            let f = compile(name, None).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!((f.language, f.name.as_str()), (language, name));
        }
        let contend = compile("contend", None).unwrap();
        assert_eq!(contend.key.as_deref(), Some("$http_x_api_key"));
        let haproxy = compile("haproxy", None).unwrap();
        assert!(
            vars_of(&haproxy).contains(&("%tsc", Field::Termination)),
            "{haproxy:?}"
        );
        assert_eq!(
            haproxy.segments.last(),
            Some(&Segment::Literal(b"\"".to_vec()))
        );
    }

    #[test]
    fn nginx_strings_and_directives_compile_alike() {
        let text =
            "$remote_addr [${time_local}] \"$request\" $status $request_time key=$http_x_api_key";
        let a = compile(text, None).unwrap();
        let b = compile(
            "log_format timed escape=default '$remote_addr [${time_local}] \"$request\" '\n    '$status $request_time key=$http_x_api_key';",
            None,
        )
        .unwrap();
        assert_eq!(a.segments, b.segments);
        assert_eq!(
            vars_of(&a),
            [
                ("$remote_addr", Field::Other),
                ("$time_local", Field::Time(vars::TimeKind::Clf)),
                ("$request", Field::RequestLine),
                ("$status", Field::Status),
                ("$request_time", Field::RequestTime),
                ("$http_x_api_key", Field::Key),
            ]
        );
        assert_eq!(a.segments[1], Segment::Literal(b" [".to_vec()));
    }

    #[test]
    fn bad_formats_say_what_is_wrong() {
        // (format, key, what the message says)
        let cases = [
            (
                "$status $upstream_responce_time",
                None,
                "unknown variable $upstream_responce_time (column 9): nginx has no such variable. did you mean $upstream_response_time?",
            ),
            (
                "$status$request_time",
                None,
                "$status$request_time have nothing between them",
            ),
            (
                "$status $",
                None,
                "`$` at column 9 is not followed by a variable name",
            ),
            (
                "%ST %Taa",
                None,
                "unknown HAProxy variable %Taa (column 5). did you mean %Ta?",
            ),
            ("%ST %[req.hdr(x)", None, "`%[` at column 5 is not closed"),
            (
                "just words",
                None,
                "is neither a preset (contend, nginx-timed, main, combined, haproxy)",
            ),
            (
                "$status $request_time",
                Some("$remote_user"),
                "--key $remote_user: the format has no such variable; it has $status $request_time",
            ),
            ("log_format x 'unclosed", None, "unclosed ' quote"),
        ];
        for (text, key, want) in cases {
            let e = compile(text, key).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{text}");
            assert!(e.to_string().contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn the_key_is_chosen_by_name() {
        let f = compile("$remote_user $status $request_time", Some("remote_user")).unwrap();
        assert_eq!(f.key.as_deref(), Some("$remote_user"));
        let f = compile("%ci %ST %Ta %[req.hdr(X-Api-Key)]", None).unwrap();
        assert_eq!(f.language, Language::Haproxy);
        assert_eq!(f.key.as_deref(), Some("%[req.hdr(X-Api-Key)]"));
        assert_eq!(compile("combined", None).unwrap().key, None);
    }

    #[test]
    fn a_gateways_config_says_its_format() {
        let nginx = "http {\n  log_format other '$status';\n  log_format contend '$time_iso8601 key=$http_x_api_key '\n      'status=$status';\n  server {\n    location / {\n      access_log /tmp/x/access.log contend;\n    }\n  }\n}\n";
        assert_eq!(
            written_by("nginx", nginx).as_deref(),
            Some("$time_iso8601 key=$http_x_api_key status=$status")
        );
        assert_eq!(
            written_by("nginx", "access_log /var/log/a.log;").as_deref(),
            Some(COMBINED)
        );
        assert_eq!(written_by("nginx", "access_log off;"), None);
        let haproxy =
            "defaults\n  option httplog\nfrontend f\n  log-format \"%ci\\ %ST %Ta %tsc\"\n";
        assert_eq!(
            written_by("haproxy", haproxy).as_deref(),
            Some("haproxy:%ci %ST %Ta %tsc")
        );
        let f = compile(&written_by("haproxy", haproxy).unwrap(), None).unwrap();
        assert_eq!(f.language, Language::Haproxy);
        assert!(compile(&written_by("reference", "").unwrap(), None).is_ok());
        assert_eq!(
            written_by("reference", "access_log_format = \"json\"\n"),
            None
        );
        assert_eq!(written_by("external", ""), None);
    }
}
