//! [`CancellableIo`]: I/O that starts failing once a token fires.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use super::token::CancelToken;
use super::when_cancelled::WhenCancelled;

pin_project! {
    /// Wraps an I/O object so that its reads, writes and flushes fail with an
    /// [`io::Error`] wrapping [`Cancelled`](crate::Cancelled) once a token
    /// fires: cancellation reaches code that only knows I/O errors.
    ///
    /// It implements `futures_io`'s `AsyncRead`/`AsyncBufRead`/`AsyncWrite`/`AsyncSeek` when
    /// the inner object does, and with the `tokio` feature tokio's as well.
    ///
    /// - The token is checked before every operation (seeks included); an
    ///   operation that is pending when the token fires is woken and fails.
    /// - The error has kind [`Other`](io::ErrorKind::Other), not
    ///   `Interrupted` (which retry loops would retry forever); recognise it
    ///   with `error.get_ref().and_then(|e| e.downcast_ref::<Cancelled>())`.
    /// - Closing (`poll_close`, tokio's `poll_shutdown`) is **not** refused:
    ///   cancellation should still let a task close its connection cleanly.
    ///
    /// # Buffers go inside
    ///
    /// Wrap the buffered object, not the other way round:
    /// `CancellableIo::new(BufWriter::new(stream), &token)`. Then closing
    /// after a cancel flushes what the buffer holds, because close reaches
    /// the buffer. A buffer *around* the wrapper must write its bytes
    /// through it, and those writes fail once the token fired: its close
    /// fails, its bytes are lost and the stream is never closed. Buffered
    /// readers go inside too: the wrapper passes `AsyncBufRead` through
    /// (`fill_buf` fails once the token fired), so `read_line` and the like
    /// stop at cancellation as plain reads do.
    ///
    /// # Copies
    ///
    /// Generic copying code keeps bytes it has read but not yet written in
    /// a buffer of its own, and drops them when it returns an error. So the
    /// cancel must stop a copy when that buffer is empty, which depends on
    /// the copy:
    ///
    /// - `futures::io::copy` and tokio's `copy_buf` read only once they
    ///   hold nothing: wrap the *source*, and for `copy_buf` put the
    ///   `BufReader` **around** the wrapper,
    ///   `copy_buf(&mut BufReader::new(CancellableIo::new(source, &token)), &mut sink)`.
    ///   The cancel then stops the copy between chunks with nothing in
    ///   hand; a copy stuck on a full destination waits for room first.
    /// - `tokio::io::copy` and `copy_bidirectional` read ahead while they
    ///   still hold bytes, so a cancelled read can stop them with bytes in
    ///   hand, which are lost: use `copy_buf` as above instead.
    /// - Wrapping only the destination loses up to a buffer's worth of
    ///   bytes at a cancel. If the destination may stall for good, wrap it
    ///   too, and the bytes in hand are the price of stopping.
    ///
    /// ```
    /// use futures::io::{AsyncReadExt, Cursor};
    /// use taskscope::{CancelToken, CancellableIo};
    ///
    /// # futures::executor::block_on(async {
    /// let token = CancelToken::new();
    /// let mut io = CancellableIo::new(Cursor::new(vec![1_u8, 2, 3]), &token);
    /// let mut byte = [0_u8; 1];
    /// io.read_exact(&mut byte).await.unwrap();
    /// token.cancel();
    /// let error = io.read_exact(&mut byte).await.unwrap_err();
    /// assert!(error.get_ref().unwrap().is::<taskscope::Cancelled>());
    /// # });
    /// ```
    ///
    /// # Cancel safety
    ///
    /// As the inner object's operations.
    ///
    /// # Panics
    ///
    /// Panics of the inner object propagate.
    pub struct CancellableIo<T> {
        #[pin]
        io: T,
        token: CancelToken,
        // One registration per direction: a reader and a writer may wait at
        // the same time (a split duplex), each with its own waker.
        read_wait: WhenCancelled,
        write_wait: WhenCancelled,
    }
}

impl<T> CancellableIo<T> {
    /// Wraps `io`; its operations fail once `token` is cancelled.
    pub fn new(io: T, token: &CancelToken) -> Self {
        CancellableIo {
            io,
            token: token.clone(),
            read_wait: token.cancelled(),
            write_wait: token.cancelled(),
        }
    }

    /// The token that stops the I/O.
    pub fn token(&self) -> &CancelToken {
        &self.token
    }

    /// The inner object.
    pub fn get_ref(&self) -> &T {
        &self.io
    }

    /// The inner object, mutably; operations on it bypass the token.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.io
    }

    /// Unwraps the inner object.
    pub fn into_inner(self) -> T {
        self.io
    }
}

/// Fails at once if the token fired, else runs `op`; if `op` is pending,
/// registers `wait` so the cancellation wakes the caller.
fn guarded<R>(
    token: &CancelToken,
    wait: &mut WhenCancelled,
    cx: &mut Context<'_>,
    op: impl FnOnce(&mut Context<'_>) -> Poll<io::Result<R>>,
) -> Poll<io::Result<R>> {
    if let Err(cancelled) = token.check() {
        return Poll::Ready(Err(cancelled.into()));
    }
    match op(cx) {
        Poll::Ready(result) => Poll::Ready(result),
        // A cancel between `op` and this registration is seen here: the
        // future checks the flag before it registers.
        Poll::Pending => match std::future::Future::poll(Pin::new(wait), cx) {
            Poll::Ready(cancelled) => Poll::Ready(Err(cancelled.into())),
            Poll::Pending => Poll::Pending,
        },
    }
}

impl<T: futures_io::AsyncRead> futures_io::AsyncRead for CancellableIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let io = this.io;
        guarded(this.token, this.read_wait, cx, |cx| io.poll_read(cx, buf))
    }
}

impl<T: futures_io::AsyncBufRead> futures_io::AsyncBufRead for CancellableIo<T> {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        let this = self.project();
        let io = this.io;
        guarded(this.token, this.read_wait, cx, |cx| io.poll_fill_buf(cx))
    }

    fn consume(self: Pin<&mut Self>, amount: usize) {
        self.project().io.consume(amount);
    }
}

impl<T: futures_io::AsyncWrite> futures_io::AsyncWrite for CancellableIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let io = this.io;
        guarded(this.token, this.write_wait, cx, |cx| io.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let io = this.io;
        guarded(this.token, this.write_wait, cx, |cx| {
            io.poll_write_vectored(cx, bufs)
        })
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.project();
        let io = this.io;
        guarded(this.token, this.write_wait, cx, |cx| io.poll_flush(cx))
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().io.poll_close(cx)
    }
}

#[cfg(feature = "tokio")]
impl<T: tokio::io::AsyncRead> tokio::io::AsyncRead for CancellableIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        let io = this.io;
        guarded(this.token, this.read_wait, cx, |cx| io.poll_read(cx, buf))
    }
}

#[cfg(feature = "tokio")]
impl<T: tokio::io::AsyncBufRead> tokio::io::AsyncBufRead for CancellableIo<T> {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        let this = self.project();
        let io = this.io;
        guarded(this.token, this.read_wait, cx, |cx| io.poll_fill_buf(cx))
    }

    fn consume(self: Pin<&mut Self>, amount: usize) {
        self.project().io.consume(amount);
    }
}

#[cfg(feature = "tokio")]
impl<T: tokio::io::AsyncWrite> tokio::io::AsyncWrite for CancellableIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let io = this.io;
        guarded(this.token, this.write_wait, cx, |cx| io.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let io = this.io;
        guarded(this.token, this.write_wait, cx, |cx| {
            io.poll_write_vectored(cx, bufs)
        })
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.project();
        let io = this.io;
        guarded(this.token, this.write_wait, cx, |cx| io.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().io.poll_shutdown(cx)
    }
}

impl<T: futures_io::AsyncSeek> futures_io::AsyncSeek for CancellableIo<T> {
    fn poll_seek(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        position: io::SeekFrom,
    ) -> Poll<io::Result<u64>> {
        let this = self.project();
        let io = this.io;
        guarded(this.token, this.read_wait, cx, |cx| {
            io.poll_seek(cx, position)
        })
    }
}

#[cfg(feature = "tokio")]
impl<T: tokio::io::AsyncSeek> tokio::io::AsyncSeek for CancellableIo<T> {
    fn start_seek(self: Pin<&mut Self>, position: io::SeekFrom) -> io::Result<()> {
        let this = self.project();
        this.token.check()?;
        this.io.start_seek(position)
    }

    fn poll_complete(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        let this = self.project();
        let io = this.io;
        guarded(this.token, this.read_wait, cx, |cx| io.poll_complete(cx))
    }
}

impl<T: fmt::Debug> fmt::Debug for CancellableIo<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancellableIo")
            .field("io", &self.io)
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::test_util::CountingWaker;
    use futures_io::AsyncRead;

    /// A reader that is never ready.
    struct Silent;

    impl AsyncRead for Silent {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            Poll::Pending
        }
    }

    #[test]
    fn debug_output_shows_the_wrapped_object() {
        let token = CancelToken::new();
        let io = CancellableIo::new(futures::io::Cursor::new(vec![7_u8]), &token);
        let shown = format!("{io:?}");
        assert!(
            shown.starts_with("CancellableIo { io: Cursor { inner: Cursor { inner: [7]"),
            "{shown}"
        );
    }

    #[test]
    fn a_pending_read_is_woken_and_fails_when_the_token_fires() {
        let token = CancelToken::new();
        let mut io = Box::pin(CancellableIo::new(Silent, &token));
        let waker = CountingWaker::new();
        let mut buf = [0_u8; 4];
        assert!(
            io.as_mut()
                .poll_read(&mut waker.context(), &mut buf)
                .is_pending()
        );
        token.cancel();
        assert_eq!(waker.count(), 1);
        match io.as_mut().poll_read(&mut waker.context(), &mut buf) {
            Poll::Ready(Err(error)) => {
                assert_eq!(error.kind(), io::ErrorKind::Other);
                assert!(error.get_ref().is_some_and(|e| e.is::<crate::Cancelled>()));
            }
            other => panic!("expected a cancelled read, got {other:?}"),
        }
    }
}
