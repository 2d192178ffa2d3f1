//! The cancellable I/O wrapper on in-memory pipes.

use futures::executor::block_on;
use taskscope::{CancelToken, CancellableIo, Cancelled};

fn is_cancellation(error: &std::io::Error) -> bool {
    error.get_ref().is_some_and(|inner| inner.is::<Cancelled>())
}

#[test]
fn futures_io_reads_and_writes_fail_after_the_token_fires_but_close_works() {
    use futures::io::{AsyncReadExt, AsyncWriteExt, Cursor};
    block_on(async {
        let token = CancelToken::new();
        let mut io = CancellableIo::new(Cursor::new(vec![0_u8; 8]), &token);
        io.write_all(b"abc").await.unwrap();
        token.cancel();
        let error = io.write_all(b"def").await.unwrap_err();
        assert!(is_cancellation(&error));
        let error = io.read(&mut [0_u8; 4]).await.unwrap_err();
        assert!(is_cancellation(&error));
        io.close()
            .await
            .expect("closing is not refused after cancellation");
        assert_eq!(&io.into_inner().into_inner()[..3], b"abc");
    });
}

#[test]
fn close_after_cancellation_flushes_a_buffer_inside_the_wrapper() {
    use futures::io::{AsyncWriteExt, BufWriter, Cursor};
    block_on(async {
        let token = CancelToken::new();
        let buffered = BufWriter::new(Cursor::new(Vec::new()));
        let mut io = CancellableIo::new(buffered, &token);
        io.write_all(b"buffered").await.unwrap();
        assert!(
            io.get_ref().get_ref().get_ref().is_empty(),
            "still buffered"
        );
        token.cancel();
        assert!(is_cancellation(&io.flush().await.unwrap_err()));
        io.close().await.expect("closing is not refused");
        let written = io.into_inner().into_inner().into_inner();
        assert_eq!(written, b"buffered", "close wrote what the buffer held");
    });
}

#[test]
fn a_buffered_reader_inside_the_wrapper_reads_lines_until_the_token_fires() {
    use futures::io::{AsyncBufReadExt, BufReader, Cursor};
    block_on(async {
        let token = CancelToken::new();
        let lines = BufReader::new(Cursor::new(b"one\ntwo\n".to_vec()));
        let mut io = CancellableIo::new(lines, &token);
        let mut line = String::new();
        io.read_line(&mut line).await.unwrap();
        assert_eq!(line, "one\n");
        token.cancel();
        let error = io.read_line(&mut line).await.unwrap_err();
        assert!(is_cancellation(&error), "fill_buf fails once cancelled");
    });
}

#[cfg(feature = "tokio")]
mod on_tokio {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};

    #[tokio::test]
    async fn a_read_pending_on_a_duplex_pipe_fails_when_the_token_fires() {
        let token = CancelToken::new();
        let (near, mut far) = duplex(64);
        let mut near = CancellableIo::new(near, &token);
        far.write_all(b"hello").await.unwrap();
        let mut buf = [0_u8; 5];
        near.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"hello");
        let (read, ()) = tokio::join!(near.read(&mut buf), async {
            tokio::task::yield_now().await;
            token.cancel();
        });
        let error = read.unwrap_err();
        assert!(is_cancellation(&error));
        assert_eq!(error.kind(), std::io::ErrorKind::Other);
    }

    #[tokio::test]
    async fn writes_fail_after_cancellation_and_shutdown_still_reaches_the_peer() {
        let token = CancelToken::new();
        let (near, mut far) = duplex(64);
        let mut near = CancellableIo::new(near, &token);
        near.write_all(b"partial").await.unwrap();
        token.cancel();
        assert!(is_cancellation(&near.write_all(b"more").await.unwrap_err()));
        assert!(is_cancellation(&near.flush().await.unwrap_err()));
        near.shutdown().await.expect("shutdown is not refused");
        let mut received = Vec::new();
        far.read_to_end(&mut received).await.unwrap();
        assert_eq!(
            received, b"partial",
            "the peer sees the data, then a clean end"
        );
    }

    #[tokio::test]
    async fn a_tokio_buffered_reader_inside_the_wrapper_fails_its_next_fill_once_cancelled() {
        use tokio::io::{AsyncBufReadExt, BufReader};
        let token = CancelToken::new();
        let (near, mut far) = duplex(64);
        let mut near = CancellableIo::new(BufReader::new(near), &token);
        far.write_all(b"one\ntwo\n").await.unwrap();
        let mut line = String::new();
        near.read_line(&mut line).await.unwrap();
        assert_eq!(line, "one\n");
        token.cancel();
        assert!(is_cancellation(
            &near.read_line(&mut line).await.unwrap_err()
        ));
    }

    #[tokio::test]
    async fn a_write_blocked_on_a_full_pipe_fails_when_the_token_fires() {
        let token = CancelToken::new();
        let (near, _far) = duplex(4);
        let mut near = CancellableIo::new(near, &token);
        let (written, ()) = tokio::join!(near.write_all(b"more than four bytes"), async {
            tokio::task::yield_now().await;
            token.cancel();
        });
        assert!(is_cancellation(&written.unwrap_err()));
    }

    /// The copy recipe of `CancellableIo`'s docs: `copy_buf` with the
    /// buffer around the wrapped source stops between chunks, so every
    /// byte taken from the source reaches the destination, also when the
    /// cancel comes while the copy waits for room.
    #[tokio::test]
    async fn copy_buf_around_a_cancellable_source_loses_nothing_at_a_cancel() {
        use tokio::io::BufReader;
        const SENT: usize = 600;
        let token = CancelToken::new();
        let (mut producer, source) = duplex(1024);
        let (mut sink, mut consumer) = duplex(64);
        producer.write_all(&[7; SENT]).await.unwrap();
        let mut source = BufReader::with_capacity(256, CancellableIo::new(source, &token));
        let delivered = {
            let mut copy = std::pin::pin!(tokio::io::copy_buf(&mut source, &mut sink));
            assert!(
                futures::poll!(copy.as_mut()).is_pending(),
                "the sink is full"
            );
            token.cancel();
            assert!(
                futures::poll!(copy.as_mut()).is_pending(),
                "it waits for room"
            );
            let mut delivered = Vec::new();
            let mut chunk = [0_u8; 64];
            let stopped = loop {
                if let std::task::Poll::Ready(result) = futures::poll!(copy.as_mut()) {
                    break result;
                }
                let n = consumer.read(&mut chunk).await.unwrap();
                delivered.extend_from_slice(&chunk[..n]);
            };
            assert!(is_cancellation(&stopped.unwrap_err()));
            delivered.len()
        };
        drop(sink);
        let mut rest = Vec::new();
        consumer.read_to_end(&mut rest).await.unwrap();
        assert!(source.buffer().is_empty(), "nothing left in hand");
        drop(producer);
        let mut unread = Vec::new();
        source
            .into_inner()
            .into_inner()
            .read_to_end(&mut unread)
            .await
            .unwrap();
        assert!(delivered + rest.len() > 0, "some bytes went through");
        assert_eq!(delivered + rest.len() + unread.len(), SENT);
    }

    #[tokio::test]
    async fn tokio_seeks_pass_through_until_the_token_fires() {
        use tokio::io::AsyncSeekExt;
        let token = CancelToken::new();
        let mut io = CancellableIo::new(std::io::Cursor::new(b"abcdef".to_vec()), &token);
        assert_eq!(io.seek(std::io::SeekFrom::Start(4)).await.unwrap(), 4);
        let mut byte = [0_u8; 1];
        io.read_exact(&mut byte).await.unwrap();
        assert_eq!(&byte, b"e");
        token.cancel();
        let error = io.seek(std::io::SeekFrom::Start(0)).await.unwrap_err();
        assert!(is_cancellation(&error));
    }
}

#[test]
fn futures_io_seeks_pass_through_until_the_token_fires() {
    use futures::io::{AsyncReadExt, AsyncSeekExt, Cursor};
    block_on(async {
        let token = CancelToken::new();
        let mut io = CancellableIo::new(Cursor::new(b"abcdef".to_vec()), &token);
        assert_eq!(io.seek(std::io::SeekFrom::Start(2)).await.unwrap(), 2);
        let mut byte = [0_u8; 1];
        io.read_exact(&mut byte).await.unwrap();
        assert_eq!(&byte, b"c");
        token.cancel();
        let error = io.seek(std::io::SeekFrom::End(0)).await.unwrap_err();
        assert!(is_cancellation(&error));
    });
}
