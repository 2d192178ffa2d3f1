//! The task cell: one allocation per child for its header, its output slot
//! and its future, reference-counted by hand so that the scope can keep the
//! one promise `mem::forget` safety rests on.
//!
//! The crate's third `unsafe` block lives here, spread over the few
//! functions that need it; the argument, invariants C1-C7, is in
//! design/soundness.md, "Task cells". In short:
//!
//! - [`TaskRef`] is a counted pointer to a cell's [`Head`] (the `'static`
//!   [`TaskHeader`]): snapshots, the ambient slot and the child's
//!   [`Waker`]s (a hand-made `RawWaker` over the same count) hold these.
//! - [`OwnedTask`] is the scope's reference: the only one that polls or drops
//!   the future, and it releases its count only after dropping the future in
//!   place. A forgotten scope leaks its `OwnedTask`s, so their cells are
//!   never freed and nobody else can reach the futures.
//! - [`JoinRef`] is the `JoinHandle`'s reference: it reaches the header and
//!   the output slot, never the future.

use std::cell::UnsafeCell;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ops::Deref;
use std::pin::Pin;
use std::ptr::NonNull;
// The count is std's even under loom, as `WakerArc`'s is (see src/sync.rs):
// loom sees the atomics and mutexes inside the header and the slot.
use std::sync::atomic::{AtomicUsize as RefCount, Ordering};
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

use super::child::ChildFuture;
use super::handle::SendTask;
use super::join_handle::JoinSlot;
use super::local::LocalTask;
use super::task::{TaskExit, TaskHeader};
use crate::sync::WakerArc;

/// What every allocation a [`TaskRef`] points at starts with.
#[repr(C)]
struct Head {
    /// C1: one count per `TaskRef` (including those inside an `OwnedTask`,
    /// a `JoinRef` and every `Waker`).
    refs: RefCount,
    vtable: &'static CellVtable,
    task: TaskHeader,
}

/// The functions that know the cell's future type.
struct CellVtable {
    /// Polls the child in place. Only for the cell's `OwnedTask` (C2).
    poll: unsafe fn(NonNull<Head>, &mut Context<'_>) -> Poll<TaskExit>,
    /// Drops the child's future in place if it is still there. Only for the
    /// cell's `OwnedTask`, from its destructor (C2, C3).
    drop_future: unsafe fn(NonNull<Head>),
    /// Frees the allocation. Only for whoever released the last count (C1, C5).
    dealloc: unsafe fn(NonNull<Head>),
}

/// A child's cell: the header, the output slot, the future.
///
/// `repr(C)` with `head` first and `slot` second (C6): a pointer to the cell
/// is a pointer to its `Head`, and [`Joinable`] finds the slot knowing only
/// the output type.
#[repr(C)]
struct Cell<F: Future> {
    head: Head,
    slot: JoinSlot<F::Output>,
    /// Reached only by the cell's `OwnedTask` (C2); pinned: the cell never
    /// moves and the future is dropped in place (C3).
    child: UnsafeCell<ChildFuture<F>>,
}

/// The prefix of every `Cell<F>` whose `F::Output` is `T`. Never made: its
/// layout tells [`JoinRef::slot`] where the slot is (C6).
#[repr(C)]
struct Joinable<T> {
    head: Head,
    slot: JoinSlot<T>,
}

/// The body's "cell": a header alone, so that the body shows in snapshots
/// and is woken like a child. It has no `OwnedTask`, so only `dealloc` runs.
static BODY_VTABLE: CellVtable = CellVtable {
    poll: |_, _| Poll::Ready(TaskExit::Completed),
    drop_future: |_| {},
    dealloc: dealloc_body,
};

/// Which child futures a scope's child type may hold: the `Send` check that
/// unsizing into `Box<dyn Future + Send>` made before children lived in
/// cells. A `Send` scope's children and their outputs must be `Send`: the
/// `OwnedTask` moves between the threads of a parallel scope (C7).
pub(crate) trait Holds<F: Future> {}

impl<'env, F> Holds<F> for SendTask<'env>
where
    F: Future + Send + 'env,
    F::Output: Send + 'env,
{
}

impl<'env, F> Holds<F> for LocalTask<'env>
where
    F: Future + 'env,
    F::Output: 'env,
{
}

/// A counted reference to a task's header; see the module docs.
pub(crate) struct TaskRef {
    head: NonNull<Head>,
}

#[allow(unsafe_code)] // task cells (design/soundness.md, "Task cells", C7)
// SAFETY: C7. A `TaskRef` gives out only `&TaskHeader`, and `TaskHeader` is
// `Send + Sync` (asserted below); dropping the last one runs the cell's
// `dealloc`, which by C5 drops only the header and a slot that holds no
// output, and frees memory: nothing of the child's future or output, which
// may be `!Send`, is touched on the releasing thread.
unsafe impl Send for TaskRef {}
#[allow(unsafe_code)] // task cells (design/soundness.md, "Task cells", C7)
// SAFETY: as for `Send` (C7): shared use only reaches `&TaskHeader`.
unsafe impl Sync for TaskRef {}

const _: () = {
    const fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<TaskHeader>();
};

impl TaskRef {
    /// The body's header, alone in its allocation.
    pub(crate) fn body(task: TaskHeader) -> TaskRef {
        let head = Box::new(Head {
            refs: RefCount::new(1),
            vtable: &BODY_VTABLE,
            task,
        });
        TaskRef {
            head: NonNull::from(Box::leak(head)),
        }
    }

    #[allow(unsafe_code)] // task cells (design/soundness.md, "Task cells", C1)
    fn head(&self) -> &Head {
        // SAFETY: C1: this reference holds a count, so the allocation is
        // alive; the head is only ever written through its atomics and
        // mutexes (interior mutability), never through `&mut`.
        unsafe { self.head.as_ref() }
    }

    /// A waker for this task, holding a count of its own.
    pub(crate) fn waker(&self) -> Waker {
        self.clone().into_waker()
    }

    /// A waker holding this reference's count.
    #[allow(unsafe_code)] // task cells (design/soundness.md, "Task cells", C1)
    pub(crate) fn into_waker(self) -> Waker {
        let raw = self.into_raw();
        // SAFETY: the `RawWaker` contract: its data is a count-holding
        // pointer made by `into_raw`, valid for as long as that count is
        // held (C1), which the vtable's functions keep exactly (each clone
        // takes a count, each `wake` or `drop` releases one); they only touch
        // the header's atomics and mutexes, so they are thread-safe.
        unsafe { Waker::from_raw(raw) }
    }

    fn into_raw(self) -> RawWaker {
        let this = ManuallyDrop::new(self);
        RawWaker::new(this.head.as_ptr().cast_const().cast(), &WAKER_VTABLE)
    }

    /// Whether both point at the same task.
    pub(crate) fn ptr_eq(this: &TaskRef, other: &TaskRef) -> bool {
        this.head == other.head
    }

    /// The task's address, as a key.
    pub(crate) fn addr(&self) -> usize {
        self.head.as_ptr().addr()
    }
}

impl Deref for TaskRef {
    type Target = TaskHeader;

    fn deref(&self) -> &TaskHeader {
        &self.head().task
    }
}

impl Clone for TaskRef {
    fn clone(&self) -> Self {
        // Relaxed, as `Arc::clone`: a new count is made from one held, so
        // the cell cannot be freed meanwhile.
        let old = self.head().refs.fetch_add(1, Ordering::Relaxed);
        if old > isize::MAX as usize {
            // Leaked clones (`mem::forget` of wakers in a loop): better abort
            // than wrap around and free a cell in use.
            std::process::abort();
        }
        TaskRef { head: self.head }
    }
}

impl Drop for TaskRef {
    #[allow(unsafe_code)] // task cells (design/soundness.md, "Task cells", C1)
    fn drop(&mut self) {
        // SAFETY: C1: this reference's own count, given up as it goes.
        unsafe { self.release(1) }
    }
}

impl TaskRef {
    /// Releases `counts` counts, freeing the cell if they were the last.
    ///
    /// # Safety
    ///
    /// C1: the caller gives up this reference's count and `counts - 1`
    /// counts of references it forgot, and uses neither this reference nor
    /// those again.
    #[allow(unsafe_code)] // task cells (design/soundness.md, "Task cells", C1, C5)
    unsafe fn release(&self, counts: usize) {
        // Release, then Acquire on the last one, as `Arc`'s drop: every use
        // of the cell through another count happens before it is freed.
        if self.head().refs.fetch_sub(counts, Ordering::Release) != counts {
            return;
        }
        // An Acquire load of the count rather than an Acquire fence: it reads
        // the value our decrement wrote, which continues the release sequence
        // of every earlier decrement, so it synchronises with all of them as
        // the fence would. ThreadSanitizer models loads but not fences, and
        // reported the free as a race with the other threads' decrements
        // (std's `Arc` makes the same swap under TSan). It runs only on the
        // last release.
        self.head().refs.load(Ordering::Acquire);
        let dealloc = self.head().vtable.dealloc;
        // SAFETY: C1: that was the last count, so nobody else can reach the
        // cell any more; `dealloc` is the one made for this allocation (C5).
        unsafe {
            dealloc(self.head);
        }
    }
}

impl fmt::Debug for TaskRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

static WAKER_VTABLE: RawWakerVTable =
    RawWakerVTable::new(clone_waker, wake_waker, wake_waker_by_ref, drop_waker);

/// The count a waker's data pointer holds, as a `TaskRef`.
///
/// # Safety
///
/// `data` must come from `TaskRef::into_raw` and its count must not have
/// been released: the waker functions below get exactly that from `Waker`.
#[allow(unsafe_code)] // task cells (design/soundness.md, "Task cells", C1)
unsafe fn waker_ref(data: *const ()) -> TaskRef {
    // SAFETY: the caller passes a pointer made by `into_raw` from a
    // `NonNull`, so it is not null.
    let head = unsafe { NonNull::new_unchecked(data.cast_mut().cast::<Head>()) };
    TaskRef { head }
}

#[allow(unsafe_code)] // the waker vtable's functions must be `unsafe fn`
unsafe fn clone_waker(data: *const ()) -> RawWaker {
    // SAFETY: `data` is a live waker's (the `RawWakerVTable` contract);
    // borrowed, its count stays with that waker.
    let task = ManuallyDrop::new(unsafe { waker_ref(data) });
    TaskRef::clone(&task).into_raw()
}

#[allow(unsafe_code)] // the waker vtable's functions must be `unsafe fn`
unsafe fn wake_waker(data: *const ()) {
    // SAFETY: `data` is a live waker's, consumed here: its count is released
    // when `task` drops.
    let task = unsafe { waker_ref(data) };
    task.wake();
}

#[allow(unsafe_code)] // the waker vtable's functions must be `unsafe fn`
unsafe fn wake_waker_by_ref(data: *const ()) {
    // SAFETY: `data` is a live waker's; borrowed, as in `clone_waker`.
    let task = ManuallyDrop::new(unsafe { waker_ref(data) });
    task.wake();
}

#[allow(unsafe_code)] // the waker vtable's functions must be `unsafe fn`
unsafe fn drop_waker(data: *const ()) {
    // SAFETY: `data` is a live waker's, dropped here with its count.
    drop(unsafe { waker_ref(data) });
}

/// The scope's reference to a child: polls and drops its future.
///
/// One per cell, not `Clone` (C2). `T` is the scope's child type
/// (`SendTask<'env>` or `LocalTask<'env>`): it carries `'env`, so the
/// compiler keeps every `OwnedTask` from outliving the data the future
/// borrows, and `Send`-ness, through the marker.
pub(crate) struct OwnedTask<T: ?Sized> {
    /// Released by hand, with `also_held`, after the future is dropped (C3).
    task: ManuallyDrop<TaskRef>,
    /// Counts of forgotten references to the cell that this one releases
    /// with its own (see [`OwnedTask::release_with`]).
    also_held: usize,
    _owns: PhantomData<Box<T>>,
}

impl<T: ?Sized> OwnedTask<T> {
    /// Allocates the cell of `future` with `task` as its header, counted
    /// for the `OwnedTask`, the `JoinRef` and `N` more references to the
    /// header, which the spawner needs anyway: one count set at once rather
    /// than `N` atomic increments on every spawn.
    pub(crate) fn new<F, const N: usize>(
        future: F,
        task: TaskHeader,
    ) -> (Self, JoinRef<F::Output>, [TaskRef; N])
    where
        F: Future,
        T: Holds<F>,
    {
        let cell = Box::new(Cell {
            head: Head {
                // C1: the `OwnedTask`, the `JoinRef` and the `N` others.
                refs: RefCount::new(2 + N),
                vtable: &Cell::<F>::VTABLE,
                task,
            },
            slot: JoinSlot::new(),
            child: UnsafeCell::new(ChildFuture::new(future)),
        });
        let head = NonNull::from(Box::leak(cell)).cast::<Head>();
        let owned = OwnedTask {
            task: ManuallyDrop::new(TaskRef { head }),
            also_held: 0,
            _owns: PhantomData,
        };
        let join = JoinRef {
            task: TaskRef { head },
            taken: false,
            _slot: PhantomData,
        };
        (owned, join, std::array::from_fn(|_| TaskRef { head }))
    }

    /// Polls the child (once it finished, returns `Completed` again).
    #[allow(unsafe_code)] // task cells (design/soundness.md, "Task cells", C2)
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<TaskExit> {
        let poll = self.task.head().vtable.poll;
        // SAFETY: C2: this is the cell's one `OwnedTask`, borrowed mutably,
        // so no other poll or drop of the future runs meanwhile.
        unsafe { poll(self.task.head, cx) }
    }

    /// Drops the child's future (a no-op once it finished) and releases the
    /// scope's count together with those of `header` and `waker`, the two
    /// the scope kept for polling (both made from this cell by
    /// `Core::insert`): one atomic step rather than three on the path of
    /// every finished child (design/performance.md).
    pub(crate) fn release_with(mut self, header: TaskRef, waker: Waker) {
        let ours = self.task.head.as_ptr().cast_const().cast::<()>();
        assert!(
            TaskRef::ptr_eq(&self.task, &header)
                && std::ptr::eq(waker.vtable(), &WAKER_VTABLE)
                && waker.data() == ours,
            "taskscope bug: a child's parts hold another cell's header or waker"
        );
        // C1: both counts are this cell's; the `OwnedTask` releases them.
        std::mem::forget(header);
        std::mem::forget(waker);
        self.also_held += 2;
    }
}

impl<T: ?Sized> Drop for OwnedTask<T> {
    #[allow(unsafe_code)] // task cells (design/soundness.md, "Task cells", C1, C2, C3)
    fn drop(&mut self) {
        /// Releases the counts once the future is dropped, also if its
        /// destructor panics (C3: it is then still `None`).
        struct Release<'a>(&'a TaskRef, usize);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                // SAFETY: C1: the `OwnedTask`'s own count (its `task` is a
                // `ManuallyDrop`, never dropped) and the `also_held` counts
                // of references it was handed and that were forgotten.
                unsafe { self.0.release(1 + self.1) }
            }
        }
        let _release = Release(&self.task, self.also_held);
        let drop_future = self.task.head().vtable.drop_future;
        // SAFETY: C2 as in `poll`; C3: the future is dropped in place here,
        // and only then are the counts released (`_release`).
        unsafe {
            drop_future(self.task.head);
        }
    }
}

impl<T: ?Sized> fmt::Debug for OwnedTask<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("OwnedTask").field(&self.task).finish()
    }
}

/// A `JoinHandle`'s reference to its child: the header and the output slot.
pub(crate) struct JoinRef<T> {
    task: TaskRef,
    /// The handle took the outcome: the slot holds none and never will
    /// again (the child finished), so dropping need not detach (C4).
    taken: bool,
    /// `Send`, `Sync`, `Unpin` and variance as the `Arc<JoinSlot<T>>` a
    /// handle held before cells (C7).
    _slot: PhantomData<WakerArc<JoinSlot<T>>>,
}

impl<T> JoinRef<T> {
    /// The handle took the child's outcome out of the slot: the slot needs
    /// no detaching, and a finished child is no longer worth showing.
    pub(crate) fn mark_taken(&mut self) {
        self.taken = true;
        self.task.info().release();
    }

    pub(crate) fn task(&self) -> &TaskRef {
        &self.task
    }

    #[allow(unsafe_code)] // task cells (design/soundness.md, "Task cells", C6)
    pub(crate) fn slot(&self) -> &JoinSlot<T> {
        let joinable = self.task.head.cast::<Joinable<T>>().as_ptr();
        // SAFETY: C6: a `JoinRef<T>` is made only by `OwnedTask::new` for a
        // `Cell<F>` with `F::Output = T`, whose `repr(C)` prefix is
        // `Joinable<T>`, so this is the cell's slot; the count this reference
        // holds keeps it alive (C1). Only the slot's bytes are borrowed, and
        // only shared (it is a mutex).
        unsafe { &(*joinable).slot }
    }
}

impl<T> Drop for JoinRef<T> {
    fn drop(&mut self) {
        // C4: the output, if the child left one, is dropped here, while the
        // handle's type still vouches for `T`. Once the handle took the
        // outcome the slot stays empty: a finished child writes no more.
        if !self.taken {
            self.slot().detach();
        }
    }
}

impl<F: Future> Cell<F> {
    const VTABLE: CellVtable = CellVtable {
        poll: Self::poll,
        drop_future: Self::drop_future,
        dealloc: Self::dealloc,
    };

    /// The child, pinned, and the slot.
    ///
    /// # Safety
    ///
    /// `head` is the head of a live `Cell<F>` and the caller is its
    /// `OwnedTask` (C2).
    #[allow(unsafe_code)] // task cells (design/soundness.md, "Task cells", C2)
    unsafe fn parts<'a>(
        head: NonNull<Head>,
    ) -> (Pin<&'a mut ChildFuture<F>>, &'a JoinSlot<F::Output>) {
        let cell = head.cast::<Cell<F>>().as_ptr();
        // SAFETY: the cell is alive (the caller's count) and is a `Cell<F>`
        // (its vtable is this one); the `OwnedTask` alone reaches `child`
        // (C2), so the `&mut` is unique; the cell never moves and the future
        // is dropped in place (C3), so pinning it is sound.
        unsafe {
            let child = Pin::new_unchecked(&mut *(*cell).child.get());
            (child, &(*cell).slot)
        }
    }

    #[allow(unsafe_code)] // task cells (design/soundness.md, "Task cells", C2)
    unsafe fn poll(head: NonNull<Head>, cx: &mut Context<'_>) -> Poll<TaskExit> {
        // SAFETY: the vtable's contract, passed on.
        let (child, slot) = unsafe { Self::parts(head) };
        child.poll_child(slot, cx)
    }

    #[allow(unsafe_code)] // task cells (design/soundness.md, "Task cells", C3)
    unsafe fn drop_future(head: NonNull<Head>) {
        // SAFETY: the vtable's contract, passed on.
        let (child, slot) = unsafe { Self::parts(head) };
        child.drop_future(slot);
    }

    #[allow(unsafe_code)] // task cells (design/soundness.md, "Task cells", C5)
    unsafe fn dealloc(head: NonNull<Head>) {
        let cell = head.cast::<Cell<F>>().as_ptr();
        // SAFETY: C5: the last count is gone (C1), so nobody else reaches the
        // cell. The future was dropped by the `OwnedTask` before it released
        // its count (C3), and the slot holds no output (C4): dropping the
        // head and the slot runs no destructor of `F` or of its output. The
        // child is not dropped at all (it is `None`); the box's memory is
        // freed with the layout it was allocated with.
        unsafe {
            std::ptr::drop_in_place(&raw mut (*cell).head);
            std::ptr::drop_in_place(&raw mut (*cell).slot);
            std::alloc::dealloc(cell.cast(), std::alloc::Layout::new::<Cell<F>>());
        }
    }
}

#[allow(unsafe_code)] // task cells (design/soundness.md, "Task cells", C5)
unsafe fn dealloc_body(head: NonNull<Head>) {
    // SAFETY: C5: a body's head was made by `TaskRef::body` from a `Box`,
    // and the last count is gone.
    drop(unsafe { Box::from_raw(head.as_ptr()) });
}

#[cfg(all(test, not(loom)))]
mod tests {
    //! The cell's own paths, run under Miri by `.ci/run` (`--lib`): who frees
    //! a cell, and who drops an output, when the scope, the handle and a
    //! waker go in different orders.

    use std::future::Future;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::task::{Poll, Waker};

    use futures::executor::block_on;

    use crate::test_util::yield_now;
    use crate::{JoinHandle, scope};

    /// Counts its drops.
    struct Output(Arc<AtomicUsize>);

    impl Drop for Output {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    #[allow(clippy::async_yields_async)] // the handle leaves the scope on purpose
    fn a_waker_that_outlives_the_scope_and_its_data_frees_the_cell_last() {
        let stash: Arc<Mutex<Option<Waker>>> = Arc::default();
        let handle = {
            let data = vec![7_u8; 16];
            let data = &data;
            let child_stash = stash.clone();
            block_on(scope(|s| async move {
                s.spawn(std::future::poll_fn(move |cx| {
                    *child_stash.lock().unwrap() = Some(cx.waker().clone());
                    Poll::Ready(data.iter().map(|&b| u32::from(b)).sum::<u32>())
                }))
            }))
            // `data` is freed here; the handle and the waker live on.
        };
        assert!(handle.is_finished());
        assert_eq!(block_on(handle), 112, "the output waited in the cell");
        let waker = stash
            .lock()
            .unwrap()
            .take()
            .expect("the child kept its waker");
        let clone = waker.clone();
        waker.wake(); // the child is DEAD: nothing is scheduled
        drop(clone); // the last count: frees the cell
    }

    /// The drops of a child's `Output` counted when the body ends (which
    /// first hands the child's handle to `with_handle`) and after the scope.
    fn drops_of_the_output<Fut>(
        with_handle: impl FnOnce(JoinHandle<Output>) -> Fut,
    ) -> (usize, usize)
    where
        Fut: Future<Output = ()>,
    {
        let drops = Arc::new(AtomicUsize::new(0));
        let seen = block_on(scope(|s| {
            let drops = drops.clone();
            async move {
                let child_drops = drops.clone();
                with_handle(s.spawn(async move { Output(child_drops) })).await;
                drops.load(Ordering::SeqCst)
            }
        }));
        (seen, drops.load(Ordering::SeqCst))
    }

    #[test]
    fn a_handle_dropped_before_its_child_finishes_leaves_the_output_to_the_scope() {
        let (seen, after) = drops_of_the_output(|handle| async move {
            drop(handle);
            // The child runs while the body yields (a few times: the driver
            // polls the body first in a batch).
            for _ in 0..3 {
                yield_now().await;
            }
        });
        assert_eq!(seen, 1, "the child's poll dropped the unwanted output");
        assert_eq!(after, 1, "once");
    }

    #[test]
    fn an_output_its_handle_took_is_dropped_once_by_the_taker() {
        let (seen, after) = drops_of_the_output(|handle| async move { drop(handle.await) });
        assert_eq!(seen, 1, "dropped by the body, which took it");
        assert_eq!(after, 1, "and by nobody else");
    }

    #[test]
    #[allow(clippy::async_yields_async)] // the handle leaves the scope on purpose
    fn a_handle_kept_past_its_scope_drops_the_output_itself() {
        let drops = Arc::new(AtomicUsize::new(0));
        let handle = block_on(scope(|s| {
            let drops = drops.clone();
            async move { s.spawn(async move { Output(drops) }) }
        }));
        assert_eq!(drops.load(Ordering::SeqCst), 0, "the output waits");
        drop(handle);
        assert_eq!(drops.load(Ordering::SeqCst), 1, "and goes with the handle");
    }
}
