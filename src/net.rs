//! Socket halves that are either plain TCP (split without a lock) or TLS (split through
//! tokio's shared half), so sessions relay over both with one type.

use crate::tls::MaybeTls;
use std::io::IoSlice;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// Read half of a client or server connection.
pub enum NetRead {
    /// Plain TCP.
    Plain(OwnedReadHalf),
    /// TLS over TCP.
    Tls(tokio::io::ReadHalf<MaybeTls>),
}

/// Write half of a client or server connection.
pub enum NetWrite {
    /// Plain TCP.
    Plain(OwnedWriteHalf),
    /// TLS over TCP.
    Tls(tokio::io::WriteHalf<MaybeTls>),
}

/// Splits a connection into halves that can be used from one task concurrently.
pub fn split(stream: MaybeTls) -> (NetRead, NetWrite) {
    match stream {
        MaybeTls::Plain(tcp) => {
            let (r, w) = tcp.into_split();
            (NetRead::Plain(r), NetWrite::Plain(w))
        }
        tls => {
            let (r, w) = tokio::io::split(tls);
            (NetRead::Tls(r), NetWrite::Tls(w))
        }
    }
}

impl NetRead {
    /// True when the socket has something to read or was closed by the peer, from the
    /// readiness the runtime already has from epoll (no system call): on an idle connection
    /// that means the server went away or sent something unsolicited. TLS halves say false.
    pub fn has_unread_input(&self) -> bool {
        use futures_util::FutureExt;
        match self {
            NetRead::Plain(r) => r
                .ready(tokio::io::Interest::READABLE)
                .now_or_never()
                .is_some_and(|ready| ready.map_or(true, |r| r.is_readable() || r.is_read_closed())),
            NetRead::Tls(_) => false,
        }
    }
}

impl AsyncRead for NetRead {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            NetRead::Plain(r) => Pin::new(r).poll_read(cx, buf),
            NetRead::Tls(r) => Pin::new(r).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for NetWrite {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            NetWrite::Plain(w) => Pin::new(w).poll_write(cx, buf),
            NetWrite::Tls(w) => Pin::new(w).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            NetWrite::Plain(w) => Pin::new(w).poll_write_vectored(cx, bufs),
            NetWrite::Tls(w) => Pin::new(w).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            NetWrite::Plain(w) => w.is_write_vectored(),
            NetWrite::Tls(w) => w.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            NetWrite::Plain(w) => Pin::new(w).poll_flush(cx),
            NetWrite::Tls(w) => Pin::new(w).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            NetWrite::Plain(w) => Pin::new(w).poll_shutdown(cx),
            NetWrite::Tls(w) => Pin::new(w).poll_shutdown(cx),
        }
    }
}
