//! A small XML writer for response documents, and the deserialisers for request bodies.
//!
//! Responses are written by hand (element order matters to some clients and the documents are
//! simple); request bodies (`CompleteMultipartUpload`, `RestoreRequest`, …) are read with
//! quick-xml's serde support, which ignores unknown elements and the S3 namespace attribute.

use std::fmt::Write;

use serde::de::DeserializeOwned;

use crate::error::ApiError;

pub const S3_NAMESPACE: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

/// Builds an XML document element by element.
pub struct Xml {
    out: String,
}

impl Xml {
    pub fn new() -> Self {
        Xml {
            out: String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"),
        }
    }

    pub fn open(&mut self, tag: &str) {
        let _ = write!(self.out, "<{tag}>");
    }

    /// Opens the root element, with the S3 namespace when `namespace` is set.
    pub fn open_root(&mut self, tag: &str, namespace: Option<&str>) {
        match namespace {
            Some(ns) => {
                let _ = write!(self.out, "<{tag} xmlns=\"{ns}\">");
            }
            None => self.open(tag),
        }
    }

    pub fn close(&mut self, tag: &str) {
        let _ = write!(self.out, "</{tag}>");
    }

    pub fn leaf(&mut self, tag: &str, text: impl AsRef<str>) {
        let _ = write!(self.out, "<{tag}>{}</{tag}>", escape(text.as_ref()));
    }

    pub fn opt_leaf(&mut self, tag: &str, text: Option<impl AsRef<str>>) {
        if let Some(t) = text {
            self.leaf(tag, t);
        }
    }

    /// Inserts an already-serialised fragment verbatim.
    pub fn raw(&mut self, fragment: &str) {
        self.out.push_str(fragment);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

impl Default for Xml {
    fn default() -> Self {
        Self::new()
    }
}

/// Escapes text for element content. Characters XML 1.0 cannot carry at all are written as
/// character references; clients that may meet them should ask for `encoding-type=url`.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\t' && c != '\n' && c != '\r' => {
                let _ = write!(out, "&#x{:X};", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// Parses a request body, mapping any failure to `MalformedXML`.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let text =
        std::str::from_utf8(body).map_err(|_| ApiError::malformed_xml("the body is not UTF-8"))?;
    if text.trim().is_empty() {
        return Err(ApiError::malformed_xml("the body is empty"));
    }
    quick_xml::de::from_str(text).map_err(ApiError::malformed_xml)
}

/// Checks that `body` is well-formed XML whose root element is `root`.
pub fn check_root(body: &[u8], root: &str) -> Result<(), ApiError> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut depth = 0usize;
    let mut seen_root = false;
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                if depth == 0 {
                    if seen_root || e.local_name().into_inner() != root {
                        return Err(ApiError::malformed_xml(format!(
                            "the root element must be <{root}>"
                        )));
                    }
                    seen_root = true;
                }
                depth += 1;
            }
            Ok(Event::End(_)) => depth = depth.saturating_sub(1),
            Ok(Event::Empty(e)) if depth == 0 => {
                if e.local_name().into_inner() != root {
                    return Err(ApiError::malformed_xml(format!(
                        "the root element must be <{root}>"
                    )));
                }
                seen_root = true;
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => return Err(ApiError::malformed_xml(e)),
        }
    }
    if !seen_root || depth != 0 {
        return Err(ApiError::malformed_xml(format!(
            "expected one complete <{root}> element"
        )));
    }
    Ok(())
}

/// ISO 8601 as OSS writes it in listings: whole seconds with a literal `.000`
/// (`2020-06-22T11:42:32.000Z`); oss2 refuses any other fraction.
pub fn iso8601(ms: i64) -> String {
    crate::time::from_millis(ms)
        .format("%Y-%m-%dT%H:%M:%S.000Z")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_control_characters() {
        assert_eq!(escape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&apos;");
        assert_eq!(escape("x\u{1}y"), "x&#x1;y");
    }

    #[test]
    fn root_check() {
        assert!(check_root(b"<A><B/></A>", "A").is_ok());
        assert!(check_root(b"<A><B></A>", "A").is_err());
        assert!(check_root(b"<C/>", "A").is_err());
        assert!(check_root(b"", "A").is_err());
    }
}
