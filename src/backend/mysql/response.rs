//! Where a server's response to one command ends, packet by packet: OK, ERR, or a result set
//! (column count, column definitions, EOF, rows, EOF or ERR). Needed to know when a relayed
//! response is complete, and the transaction state it leaves behind.

use switchyard_mysql::{self as my, CapabilityFlags, StatusFlags};

/// How a response (or one result of a multi-result response) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseEnd {
    /// OK or final EOF, with the server's status flags (more results may follow).
    Ok(StatusFlags),
    /// ERR: the response is over.
    Err,
    /// A LOCAL INFILE request (0xFB + file name): the client's file must follow, then the
    /// server answers with OK or ERR (track that with a new tracker).
    LocalInfile,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    Columns(u64),
    ColumnsEof,
    Rows,
}

/// Follows one result of a text-protocol response.
#[derive(Debug, Clone)]
pub struct ResponseTracker {
    state: State,
    caps: CapabilityFlags,
}

impl ResponseTracker {
    /// A tracker for the response to a command just sent.
    pub fn new(caps: CapabilityFlags) -> Self {
        ResponseTracker {
            state: State::Start,
            caps,
        }
    }

    /// A tracker for answers that are rows up to an EOF, with no count: COM_FIELD_LIST's
    /// column definitions, COM_STMT_FETCH's rows.
    pub fn rows(caps: CapabilityFlags) -> Self {
        ResponseTracker {
            state: State::Rows,
            caps,
        }
    }

    /// Takes the next packet's payload; Some when it ended the result.
    pub fn feed(&mut self, payload: &[u8]) -> Option<ResponseEnd> {
        let head = payload.first().copied();
        if head == Some(my::ERR_HEADER) {
            return Some(ResponseEnd::Err);
        }
        match self.state {
            State::Start => match head {
                Some(my::OK_HEADER) => Some(ResponseEnd::Ok(ok_status(payload, self.caps))),
                // 0xFB is NULL as a length-encoded integer: never a column count.
                Some(0xFB) => Some(ResponseEnd::LocalInfile),
                // Anything else is a column count.
                _ => {
                    let n = my::read_lenenc_int(payload).map(|(n, _)| n).unwrap_or(0);
                    self.state = if n == 0 {
                        State::Rows
                    } else {
                        State::Columns(n)
                    };
                    None
                }
            },
            State::Columns(left) => {
                self.state = if left <= 1 {
                    State::ColumnsEof
                } else {
                    State::Columns(left - 1)
                };
                None
            }
            State::ColumnsEof => {
                // An execute that opened a cursor ends here: its rows come with COM_STMT_FETCH.
                let status = my::EofPacket::parse(payload).map(|e| e.status).ok();
                match status {
                    Some(s) if s.contains(StatusFlags::SERVER_STATUS_CURSOR_EXISTS) => {
                        Some(ResponseEnd::Ok(s))
                    }
                    _ => {
                        self.state = State::Rows;
                        None
                    }
                }
            }
            State::Rows => {
                if my::is_eof_packet(payload, self.caps) {
                    let status = my::EofPacket::parse(payload)
                        .map(|e| e.status)
                        .unwrap_or_else(|_| StatusFlags::empty());
                    Some(ResponseEnd::Ok(status))
                } else {
                    None
                }
            }
        }
    }
}

fn ok_status(payload: &[u8], caps: CapabilityFlags) -> StatusFlags {
    my::OkPacket::parse(payload, caps)
        .map(|o| o.status)
        .unwrap_or_else(|_| StatusFlags::empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;

    fn caps() -> CapabilityFlags {
        crate::backend::mysql::proxy_capabilities()
    }

    fn ok(status: StatusFlags) -> Vec<u8> {
        my::OkPacket {
            status,
            ..Default::default()
        }
        .encode(caps())
        .to_vec()
    }

    fn eof(status: StatusFlags) -> Vec<u8> {
        my::EofPacket {
            warnings: 0,
            status,
        }
        .encode()
        .to_vec()
    }

    #[test]
    fn ok_and_err_end_at_once() {
        let mut t = ResponseTracker::new(caps());
        let s = StatusFlags::SERVER_STATUS_IN_TRANS;
        assert_eq!(t.feed(&ok(s)), Some(ResponseEnd::Ok(s)));
        let mut t = ResponseTracker::new(caps());
        let err = my::ErrPacket::new(1146, *b"42S02", "no such table").encode();
        assert_eq!(t.feed(&err), Some(ResponseEnd::Err));
    }

    #[test]
    fn a_result_set_ends_at_its_second_eof() {
        let mut t = ResponseTracker::new(caps());
        let mut count = BytesMut::new();
        my::put_lenenc_int(&mut count, 2);
        assert_eq!(t.feed(&count), None);
        assert_eq!(t.feed(b"\x03defcolumn-a"), None);
        assert_eq!(t.feed(b"\x03defcolumn-b"), None);
        assert_eq!(t.feed(&eof(StatusFlags::empty())), None);
        // A row whose first column is NULL starts with 0xFB, one starting with 0xFE is long.
        assert_eq!(t.feed(b"\xfb\x01x"), None);
        assert_eq!(t.feed(b"\x011\x012"), None);
        let end = StatusFlags::SERVER_STATUS_AUTOCOMMIT;
        assert_eq!(t.feed(&eof(end)), Some(ResponseEnd::Ok(end)));
    }

    #[test]
    fn a_field_list_ends_at_its_eof() {
        let mut t = ResponseTracker::rows(caps());
        assert_eq!(t.feed(b"\x03defcolumn-a"), None);
        let end = StatusFlags::SERVER_STATUS_AUTOCOMMIT;
        assert_eq!(t.feed(&eof(end)), Some(ResponseEnd::Ok(end)));
    }

    #[test]
    fn an_execute_that_opens_a_cursor_ends_after_its_columns() {
        let mut t = ResponseTracker::new(caps());
        assert_eq!(t.feed(b"\x01"), None);
        assert_eq!(t.feed(b"\x03def"), None);
        let open = StatusFlags::SERVER_STATUS_AUTOCOMMIT | StatusFlags::SERVER_STATUS_CURSOR_EXISTS;
        assert_eq!(t.feed(&eof(open)), Some(ResponseEnd::Ok(open)));
    }

    #[test]
    fn a_local_infile_request_is_told_apart() {
        let mut t = ResponseTracker::new(caps());
        assert_eq!(t.feed(b"\xfb/tmp/data.csv"), Some(ResponseEnd::LocalInfile));
    }

    #[test]
    fn an_error_in_the_rows_ends_it() {
        let mut t = ResponseTracker::new(caps());
        assert_eq!(t.feed(b"\x01"), None);
        assert_eq!(t.feed(b"\x03def"), None);
        assert_eq!(t.feed(&eof(StatusFlags::empty())), None);
        let err = my::ErrPacket::new(1317, *b"70100", "interrupted").encode();
        assert_eq!(t.feed(&err), Some(ResponseEnd::Err));
    }
}
