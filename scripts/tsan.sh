#!/usr/bin/env sh
# Runs the par_scope and try_par_scope tests, the branch-waker tests (one wakes a branch
# from another thread) and the snapshot tests (snapshots taken on other
# threads hold, and may free last, the children's task cells) and the
# clean-up timer tests (a scope made on a pool thread inside a clean-up) under
# ThreadSanitizer, with std rebuilt
# instrumented (-Zbuild-std). Needs the nightly toolchain with rust-src:
#   rustup component add --toolchain nightly rust-src
# Extra arguments go to the test binary (e.g. a test name filter).
set -eu
cd "$(dirname "$0")/.."
# Backtraces off: symbolising one under TSan takes seconds, and the tests
# print several (caught panics still go through the panic hook).
RUST_BACKTRACE=0 \
RUSTFLAGS="-Zsanitizer=thread" \
RUSTDOCFLAGS="-Zsanitizer=thread" \
TSAN_OPTIONS="halt_on_error=1 ${TSAN_OPTIONS:-}" \
    cargo +nightly test -Zbuild-std --target x86_64-unknown-linux-gnu \
    --test par_scope --test par_scope_threads --test par_scope_streams --test try_par_scope \
    --test par_scope_saturated --test par_scope_nested_beside_blocking_jobs \
    --test par_scope_body_needs_the_pool \
    --test combinators_wakers --test cleanup_timer \
    --test snapshot -- "$@"
