//! CPU-heavy work per row, serially and in a `par_scope` whose children
//! borrow the rows. Shared by the `parallel_rows` and `tour` examples
//! (`#[path = "shared/par_rows.rs"] mod par_rows;`).

/// One row to score.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    /// The primary key.
    pub(crate) id: i64,
    /// The note's text, around a hundred bytes.
    pub(crate) body: String,
}

/// How many hashing rounds go over a row's text: about 10 µs of work per
/// row on a current desktop core in a release build.
const ROUNDS: u32 = 100;

/// The CPU-heavy part: an iterated 64-bit FNV-1a hash of the row's text,
/// mixed with its id. Deterministic, so both runs can be compared.
pub(crate) fn score(row: &Row) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325_u64 ^ row.id as u64;
    for round in 0..ROUNDS {
        for byte in row.body.bytes() {
            hash ^= u64::from(byte) ^ u64::from(round);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// Scores every row on one thread.
pub(crate) fn score_rows_serially(rows: &[Row]) -> Vec<u64> {
    rows.iter().map(score).collect()
}

/// Scores every row in a `par_scope`: one child per row, each borrowing its
/// row; the scope polls ready children on all of rayon's threads at once.
pub(crate) async fn score_rows_in_parallel(rows: &[Row]) -> Vec<u64> {
    taskscope::par_scope(|s| async move {
        let handles: Vec<_> = rows
            .iter()
            .map(|row| s.spawn(async move { score(row) }))
            .collect();
        let mut scores = Vec::with_capacity(handles.len());
        for handle in handles {
            scores.push(handle.await);
        }
        scores
    })
    .await
}

/// Scores the rows in a `par_scope` with one child per `chunk` rows: for
/// items of a few microseconds, a child per item spends a noticeable share
/// of its time on spawning (see design/performance.md); a child per chunk
/// does not.
pub(crate) async fn score_chunks_in_parallel(rows: &[Row], chunk: usize) -> Vec<u64> {
    taskscope::par_scope(|s| async move {
        let handles: Vec<_> = rows
            .chunks(chunk)
            .map(|rows| s.spawn(async move { score_rows_serially(rows) }))
            .collect();
        let mut scores = Vec::with_capacity(rows.len());
        for handle in handles {
            scores.extend(handle.await);
        }
        scores
    })
    .await
}
