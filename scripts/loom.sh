#!/usr/bin/env bash
# Runs taskscope's loom models (loom-tests/tests/*.rs): exhaustive checks of
# every interleaving of the library's synchronisation points, within bounds.
#
# Usage (from anywhere inside the repository):
#   bash scripts/loom.sh                     the whole suite (what CI runs)
#   bash scripts/loom.sh token               one file: token, ready_queue, join,
#                                            race, adopted, buffered_in, parallel,
#                                            gate, branch_wakers
#   bash scripts/loom.sh token <model>       one model (exact test name)
#   bash scripts/loom.sh --mutants           shows that each model fails on
#                                            its deliberately broken variant
#
# Bounds: each model sets its own preemption bound (2, or 3 for the small
# ones; see the `check(..)` call and the comment above each model).
# LOOM_MAX_BRANCHES defaults to 10000 here. Every model prints
# "loom model <name>: N interleavings explored".
#
# Run one model deeper (more preemptions than its default):
#   LOOM_MAX_PREEMPTIONS=4 bash scripts/loom.sh token concurrent_cancel_of_parent_and_child_cancels_every_descendant
#
# Replay a failure with loom's `checkpoint` feature:
#   1. Record: with an interval of 1, loom writes the path of every
#      iteration before running it, so after the failure the file holds the
#      failing interleaving:
#        LOOM_CHECKPOINT_FILE=/tmp/loom.json LOOM_CHECKPOINT_INTERVAL=1 \
#          bash scripts/loom.sh join <model>
#   2. Replay: the same file makes loom start from the stored path, so the
#      failing interleaving runs first; add the log and source locations:
#        LOOM_CHECKPOINT_FILE=/tmp/loom.json LOOM_LOG=trace LOOM_LOCATION=1 \
#          bash scripts/loom.sh join <model>
#   3. rm /tmp/loom.json (loom resumes from it for as long as it exists).
#
# Environment: CARGO_TARGET_DIR defaults to target/loom under the repository
# root, so the ordinary build cache survives the RUSTFLAGS change.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target/loom}"
export RUSTFLAGS="${RUSTFLAGS:-} --cfg loom"
export LOOM_MAX_BRANCHES="${LOOM_MAX_BRANCHES:-10000}"

# mutant  file  model: the model must fail when the mutant is switched on.
mutants=(
    "child_skips_flag_check        token        child_created_while_parent_is_cancelled_ends_cancelled"
    "register_skips_recheck        token        cancelled_future_racing_cancel_is_woken"
    "register_skips_recheck        token        grandchild_waiter_racing_root_cancel_is_woken"
    "on_cancel_checks_before_lock  token        on_cancel_racing_cancel_runs_exactly_once"
    "cancel_stops_at_depth_one     token        concurrent_cancel_of_parent_and_child_cancels_every_descendant"
    "cancel_pops_in_two_steps      token        child_dropped_while_parent_is_cancelled_leaks_nothing"
    "cancel_pops_in_two_steps      token        handles_dropped_on_two_threads_during_cancel_unlink_once"
    "lazy_cancel_flags_after_unlock token       task_cancelled_while_it_makes_its_token_sees_the_cancel"
    "check_skips_first_sight       token        a_reason_a_child_saw_stays_when_its_cancel_races_the_scopes"
    "unlink_does_not_climb         token        last_handles_of_child_and_grandchild_dropped_together_leak_nothing"
    "chain_drop_forgets_shared_ancestor token   last_handles_of_a_cancelled_chain_dropped_together_free_every_node"
    "child_skips_flag_check        token        scope_cancelled_from_another_thread_reaches_a_child_making_its_token"
    "schedule_never_wakes          ready_queue  child_woken_from_another_thread_is_polled_again"
    "clear_queued_after_poll       ready_queue  child_woken_from_another_thread_is_polled_again"
    "schedule_never_wakes          ready_queue  body_and_child_woken_from_two_threads_are_both_polled_again"
    "clear_queued_after_poll       ready_queue  body_and_child_woken_from_two_threads_are_both_polled_again"
    "spawned_after_retire_registers ready_queue spawn_from_another_thread_racing_the_scope_futures_drop_leaks_nothing"
    "race_returns_before_losers    race         race_returns_the_winner_only_after_its_loser_finished"
    "race_returns_before_losers    race         race_all_with_branches_woken_from_two_threads_waits_for_both"
    "branch_clears_queued_after_poll race       race_all_with_branches_woken_from_two_threads_waits_for_both"
    "hand_back_skips_while_running adopted      value_handed_back_during_cleanup_is_cleaned_up_before_the_scope_returns"
    "skipped_hand_back_leaks       adopted      value_dropped_elsewhere_as_the_scope_finishes_is_dropped_once"
    "buffered_in_window_off_by_one buffered_in  buffered_in_keeps_its_window_and_order_with_items_woken_elsewhere"
    "schedule_never_wakes          buffered_in  buffered_in_keeps_its_window_and_order_with_items_woken_elsewhere"
    "unordered_registers_consumer_last buffered_in buffer_unordered_in_consumed_on_another_thread_gets_every_output"
    "finish_ignores_children       join         scope_never_completes_with_a_child_still_running"
    "completed_child_stays         join         child_is_never_polled_after_it_completed"
    "schedule_never_wakes          join         join_handle_awaited_in_the_body_gets_the_value"
    "join_stores_waker_after_unlock join        join_handle_awaited_on_another_thread_gets_the_value"
    "claim_reclaims_position       parallel     every_child_of_a_fanned_out_batch_is_polled_once_per_wake"
    "put_back_ignores_rewake       parallel     every_child_of_a_fanned_out_batch_is_polled_once_per_wake"
    "put_back_ignores_rewake       parallel     child_woken_while_another_participant_polls_it_is_polled_again"
    "finish_ignores_children       parallel     child_woken_while_another_participant_polls_it_is_polled_again"
    "claim_reclaims_position       parallel     children_woken_from_two_threads_during_a_fan_out_are_each_polled_once_more"
    "put_back_ignores_rewake       parallel     children_woken_from_two_threads_during_a_fan_out_are_each_polled_once_more"
    "put_back_ignores_rewake       parallel     children_spawned_while_the_body_is_polled_in_a_fan_out_are_polled_once_per_wake"
    "finish_ignores_children       parallel     children_spawned_while_the_body_is_polled_in_a_fan_out_are_polled_once_per_wake"
    "fan_out_drops_the_body_wake   parallel     a_body_woken_during_a_fan_out_is_polled_by_the_scopes_thread"
    "gate_admits_after_close       gate         a_helper_touches_the_state_only_while_the_owner_waits_for_it"
    "gate_owner_does_not_wait      gate         a_helper_touches_the_state_only_while_the_owner_waits_for_it"
    "gate_unwind_skips_wait        gate         an_owner_unwinding_from_its_own_panic_waits_for_its_helpers_first"
    "gate_leave_skips_wake         gate         a_helper_touches_the_state_only_while_the_owner_waits_for_it"
    "gate_lingerer_keeps_its_pointer gate       a_lingering_helper_touches_only_the_fan_out_that_admitted_it"
    "gate_admits_after_close       gate         a_lingering_helper_touches_only_the_fan_out_that_admitted_it"
    "branch_wakers_keep_first_waker branch_wakers branch_woken_while_the_join_changes_tasks_is_polled_again"
    "branch_wakers_pass_forgets_wakes branch_wakers branches_woken_from_two_threads_are_both_polled_again"
)

if [[ "${1:-}" == "--mutants" ]]; then
    cargo build --release -p taskscope-loom-tests --features mutants --tests
    failed=0
    for entry in "${mutants[@]}"; do
        read -r mutant file model <<<"$entry"
        # One model per process: a loom deadlock aborts the whole test binary.
        if TASKSCOPE_LOOM_MUTANT="$mutant" cargo test -q --release -p taskscope-loom-tests \
            --features mutants --test "$file" -- --exact "$model" >/dev/null 2>&1; then
            echo "NOT CAUGHT  $mutant: $file::$model passed"
            failed=1
        else
            echo "caught      $mutant: $file::$model fails"
        fi
    done
    exit "$failed"
fi

tests=()
if [[ $# -ge 1 ]]; then
    tests=(--test "$1")
else
    for file in loom-tests/tests/*.rs; do
        tests+=(--test "$(basename "$file" .rs)")
    done
fi
filter=()
if [[ $# -ge 2 ]]; then
    filter=(--exact "$2")
fi
start=$SECONDS
cargo test --release -p taskscope-loom-tests "${tests[@]}" -- --nocapture --test-threads=1 "${filter[@]}"
echo "loom suite finished in $((SECONDS - start)) s"
