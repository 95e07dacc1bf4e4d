//! The allocator setting does what allocator.rs says: a tensor-sized block
//! freed and allocated again is reused, not mapped afresh (no new page
//! faults), and the setting is applied once. Own test binary: the setting
//! is process-wide.

use st_core::allocator;
use tch::{Kind, Tensor};

/// Minor page faults of the calling thread so far.
fn thread_minor_faults() -> i64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, usage.as_mut_ptr()) };
    assert_eq!(rc, 0);
    // SAFETY: filled by getrusage above.
    unsafe { usage.assume_init() }.ru_minflt
}

/// Faults taken while allocating and writing a 16 MiB tensor 20 times.
fn faults_of_repeated_allocation() -> i64 {
    tch::set_num_threads(1); // the writes happen on this thread
    let before = thread_minor_faults();
    for _ in 0..20 {
        let t = Tensor::ones([4 << 20], (Kind::Float, tch::Device::Cpu));
        assert_eq!(t.size(), [4 << 20]);
    }
    thread_minor_faults() - before
}

#[test]
fn freed_tensor_blocks_are_reused_not_mapped_again() {
    let untuned = faults_of_repeated_allocation();
    let setting = allocator::setting();
    if setting != "st-native" {
        eprintln!("allocator left as is ({setting}): nothing to check");
        return;
    }
    assert_eq!(
        allocator::setting(),
        "st-native",
        "applied once, same answer"
    );
    // Warm the heap once, then count: each 16 MiB block is 4,096 pages, so
    // glibc's defaults fault about 4,096 × 20 times; reused blocks nearly 0.
    faults_of_repeated_allocation();
    let tuned = faults_of_repeated_allocation();
    eprintln!("page faults, 20 allocations of 16 MiB: glibc defaults {untuned}, st-native {tuned}");
    assert!(
        untuned > 5 * 4096,
        "defaults mapped each block afresh: {untuned} faults"
    );
    assert!(
        tuned < 4096,
        "reused blocks: {tuned} faults (defaults: {untuned})"
    );
}
