//! Decoding of raw ring-buffer samples into the mirrors: never a panic, a bad sample is an error.

use std::mem::size_of;

use super::*;

/// A decoded ring-buffer sample.
#[derive(Debug, Clone)]
pub enum Raw {
    Exec(Box<ExecEvent>),
    Fork(ForkEvent),
    Exit(ExitEvent),
    File(Box<FileEvent>),
    Net(NetEvent),
    Mem(MemEvent),
    Egress(EgressEvent),
    Dns(Box<DnsEvent>),
    Tamper(TamperEvent),
    /// A raw, packet or ping socket made.
    Socket(NetEvent),
    /// A listen, or a connection accepted from another host.
    Serve(ServeEvent),
}

impl Raw {
    pub fn header(&self) -> &Header {
        match self {
            Raw::Exec(e) => &e.hdr,
            Raw::Fork(e) => &e.hdr,
            Raw::Exit(e) => &e.hdr,
            Raw::File(e) => &e.hdr,
            Raw::Net(e) => &e.hdr,
            Raw::Mem(e) => &e.hdr,
            Raw::Egress(e) => &e.hdr,
            Raw::Dns(e) => &e.hdr,
            Raw::Tamper(e) => &e.hdr,
            Raw::Socket(e) => &e.hdr,
            Raw::Serve(e) => &e.hdr,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("sample of {0} bytes is shorter than an event header")]
    Short(usize),
    #[error("unknown event type {0}")]
    UnknownType(u32),
    #[error("event type {kind} needs {need} bytes, sample has {got}")]
    Size { kind: u32, need: usize, got: usize },
}

/// A file record is sent at its used length: the head, then path_len bytes
/// of path. The rest of the buffer is zero.
fn decode_file(data: &[u8]) -> Result<Box<FileEvent>, DecodeError> {
    let size = |need| DecodeError::Size {
        kind: EV_FILE,
        need,
        got: data.len(),
    };
    if data.len() < FILE_HEAD {
        return Err(size(FILE_HEAD));
    }
    let mut e: Box<FileEvent> = Box::new(zeroed());
    let n = data.len().min(size_of::<FileEvent>());
    // SAFETY: the record's bytes are only written through this view, which
    // is what plain::as_mut_bytes asks of a Plain type.
    let bytes = unsafe { plain::as_mut_bytes(&mut *e) };
    bytes[..n].copy_from_slice(&data[..n]);
    let need = FILE_HEAD + usize::from(e.path_len);
    if need > n {
        return Err(size(need));
    }
    Ok(e)
}

fn copy_from<T: plain::Plain>(data: &[u8], kind: u32) -> Result<T, DecodeError> {
    // A copy, not plain::from_bytes: ring-buffer samples are 8-aligned, but a
    // slice from a test or a replay need not be.
    let mut out: T = zeroed();
    plain::copy_from_bytes(&mut out, data).map_err(|_| DecodeError::Size {
        kind,
        need: size_of::<T>(),
        got: data.len(),
    })?;
    Ok(out)
}

/// An all-zero record, for a sample to be copied into.
fn zeroed<T: plain::Plain>() -> T {
    // SAFETY: a Plain type is integers and arrays of them, for which all-zero
    // bytes are a valid value.
    unsafe { std::mem::MaybeUninit::zeroed().assume_init() }
}

/// Decodes one sample. Never panics: a bad sample is an error to count.
pub fn decode(data: &[u8]) -> Result<Raw, DecodeError> {
    if data.len() < size_of::<Header>() {
        return Err(DecodeError::Short(data.len()));
    }
    let mut hdr = Header::default();
    plain::copy_from_bytes(&mut hdr, data).map_err(|_| DecodeError::Short(data.len()))?;
    Ok(match hdr.kind {
        EV_EXEC => Raw::Exec(Box::new(copy_from(data, hdr.kind)?)),
        EV_FORK => Raw::Fork(copy_from(data, hdr.kind)?),
        EV_EXIT => Raw::Exit(copy_from(data, hdr.kind)?),
        EV_FILE => Raw::File(decode_file(data)?),
        EV_NET => Raw::Net(copy_from(data, hdr.kind)?),
        EV_MEM => Raw::Mem(copy_from(data, hdr.kind)?),
        EV_EGRESS => Raw::Egress(copy_from(data, hdr.kind)?),
        EV_DNS => Raw::Dns(Box::new(copy_from(data, hdr.kind)?)),
        EV_TAMPER => Raw::Tamper(copy_from(data, hdr.kind)?),
        EV_SOCKET => Raw::Socket(copy_from(data, hdr.kind)?),
        EV_SERVE => Raw::Serve(copy_from(data, hdr.kind)?),
        other => return Err(DecodeError::UnknownType(other)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_bytes(kind: u32) -> Vec<u8> {
        let h = Header {
            kind,
            pid: 42,
            tid: 43,
            ppid: 1,
            uid: 1000,
            comm: *b"cat\0\0\0\0\0\0\0\0\0\0\0\0\0",
            ..Default::default()
        };
        as_bytes(&h).to_vec()
    }

    #[test]
    fn decodes_each_type_and_rejects_bad_samples() {
        let mut net = NetEvent {
            ret: -111,
            family: 2,
            dport: 443,
            ..Default::default()
        };
        net.hdr.kind = EV_NET;
        net.hdr.pid = 7;
        match decode(as_bytes(&net)).unwrap() {
            Raw::Net(n) => {
                assert_eq!(n.ret, -111);
                assert_eq!(n.dport, 443);
                assert_eq!(n.hdr.pid, 7);
            }
            other => panic!("decoded as {other:?}"),
        }
        assert_eq!(decode(&[0u8; 10]).unwrap_err(), DecodeError::Short(10));
        assert_eq!(
            decode(&header_bytes(99)).unwrap_err(),
            DecodeError::UnknownType(99)
        );
        assert_eq!(
            decode(&header_bytes(EV_MEM)).unwrap_err(),
            DecodeError::Size {
                kind: EV_MEM,
                need: 104,
                got: 56
            }
        );
    }

    #[test]
    fn file_records_arrive_at_their_used_length() {
        let mut bytes = header_bytes(EV_FILE);
        bytes.resize(FILE_HEAD, 0);
        // path_len (offset 88) = 6: "id_rsa" follows the head.
        bytes[88..90].copy_from_slice(&6u16.to_ne_bytes());
        bytes.extend_from_slice(b"id_rsa");
        match decode(&bytes).unwrap() {
            Raw::File(f) => {
                assert_eq!(f.path_len, 6);
                assert_eq!(&f.path[..7], b"id_rsa\0");
            }
            other => panic!("decoded as {other:?}"),
        }
        // A path_len the sample does not hold, or a short head, is refused.
        bytes.truncate(FILE_HEAD + 3);
        assert_eq!(
            decode(&bytes).unwrap_err(),
            DecodeError::Size {
                kind: EV_FILE,
                need: FILE_HEAD + 6,
                got: FILE_HEAD + 3
            }
        );
        assert!(decode(&bytes[..FILE_HEAD - 1]).is_err());
    }
}
