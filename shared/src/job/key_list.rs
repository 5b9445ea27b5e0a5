//! A key list: the objects a run copies when the user names them instead of a listing (a
//! DataSync manifest, a data-transfer-hub prefix list file, the output of a query). Two forms:
//!
//! * plain text, one key per line, exactly as in the bucket (spaces are part of the key; only
//!   the line ending, `\n` or `\r\n`, is removed; empty lines are skipped);
//! * CSV (a file name ending in `.csv`): the first column is the key, quoted where it holds a
//!   comma, quote or line break; further columns are ignored; a first row whose first cell is
//!   `key` is a header and is said to be one.

use std::io::BufRead;

/// The keys read, and what the reader wants the user told.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyList {
    /// The keys, in file order (duplicates kept; the run removes them).
    pub keys: Vec<String>,
    /// Notes for the user (a header row taken as one).
    pub notes: Vec<String>,
}

/// Reads the key list `name` (its name chooses the form) from `reader`.
pub fn read(name: &str, reader: impl BufRead) -> Result<KeyList, String> {
    if name.to_ascii_lowercase().ends_with(".csv") {
        return read_csv(name, reader);
    }
    let mut list = KeyList::default();
    for (index, line) in reader.split(b'\n').enumerate() {
        let line = line.map_err(|e| format!("cannot read {name}: {e}"))?;
        let line = line.strip_suffix(b"\r").unwrap_or(&line);
        if line.is_empty() {
            continue;
        }
        let key = String::from_utf8(line.to_vec()).map_err(|_| {
            format!(
                "{name} line {}: the key is not UTF-8; fix: save the list as UTF-8 (OSS names \
                 keys in UTF-8 only)",
                index + 1
            )
        })?;
        list.keys.push(key);
    }
    Ok(list)
}

fn read_csv(name: &str, reader: impl BufRead) -> Result<KeyList, String> {
    let mut rows = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(reader);
    let mut list = KeyList::default();
    for (index, row) in rows.records().enumerate() {
        let row = row.map_err(|e| format!("{name} row {}: {e}", index + 1))?;
        let key = row.get(0).unwrap_or("");
        if index == 0 && key.eq_ignore_ascii_case("key") {
            list.notes.push(format!(
                "{name}: the first row ({key:?}) is taken as the header, not as a key"
            ));
            continue;
        }
        if !key.is_empty() {
            list.keys.push(key.to_owned());
        }
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_keep_every_character_but_the_line_ending() {
        let list = read("k.txt", " a b \r\nc,d\n\n文档/x\n".as_bytes()).unwrap();
        assert_eq!(list.keys, [" a b ", "c,d", "文档/x"]);
    }

    #[test]
    fn csv_reads_the_first_column_and_says_when_it_takes_a_header() {
        let list = read(
            "k.CSV",
            "key,size\n\"a,b\",1\n\"multi\nline\",2\n".as_bytes(),
        )
        .unwrap();
        assert_eq!(list.keys, ["a,b", "multi\nline"]);
        assert_eq!(list.notes.len(), 1);
        let none = read("k.csv", "x,1\n".as_bytes()).unwrap();
        assert!(none.notes.is_empty());
    }

    #[test]
    fn a_key_that_is_not_utf8_is_refused_by_line() {
        let e = read("k.txt", &b"ok\n\xff\xfe\n"[..]).unwrap_err();
        assert!(e.contains("k.txt line 2") && e.contains("UTF-8"), "{e}");
    }
}
