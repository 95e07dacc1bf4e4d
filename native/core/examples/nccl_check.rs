//! NCCL through libtorch's c10d, world size 1, on the first CUDA device:
//! joins a one-rank process group over a TCPStore on 127.0.0.1, all-reduces
//! and broadcasts a tensor, and prints the result. For a GPU session:
//!
//!   cargo run --release -p st-core --example nccl_check
//!
//! Without CUDA (or with libtorch's CPU build) it says so and exits 0.

use st_core::distributed::{nccl_available, Backend, Launch, Launcher, ProcessGroup};
use std::time::{Duration, Instant};
use tch::{Device, Kind, Tensor};

fn main() {
    if !tch::Cuda::is_available() {
        println!(
            "nccl_check: no CUDA device visible to libtorch; nothing to check (NCCL needs a GPU)"
        );
        return;
    }
    if !nccl_available() {
        println!(
            "nccl_check: this libtorch has no ProcessGroupNCCL (a CPU build); nothing to check"
        );
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1");
    let launch = Launch {
        rank: 0,
        local_rank: 0,
        world_size: 1,
        master_addr: "127.0.0.1".into(),
        master_port: port,
        agent_store: false,
        attempt: 0,
        launcher: Launcher::Env,
    };
    let started = Instant::now();
    let group = match ProcessGroup::connect(&launch, Backend::Nccl, Duration::from_secs(60)) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("nccl_check: {e}");
            std::process::exit(1);
        }
    };
    println!("nccl_check: process group up in {:?}", started.elapsed());
    let device = Device::Cuda(0);
    let t = Tensor::arange(8, (Kind::Float, device));
    let run = || -> st_core::Result<()> {
        group.all_reduce_sum(std::slice::from_ref(&t))?;
        group.broadcast(std::slice::from_ref(&t), 0)?;
        Ok(())
    };
    if let Err(e) = run() {
        eprintln!("nccl_check: {e}");
        std::process::exit(1);
    }
    let values = Vec::<f32>::try_from(t.to_device(Device::Cpu)).expect("f32 values");
    let expected: Vec<f32> = (0..8).map(|i| i as f32).collect();
    println!("nccl_check: all-reduce (sum over 1 rank) and broadcast on cuda:0 -> {values:?}");
    // A 100 MB all-reduce (the bucketed gradients of WRN-34-10 are ~185 MB):
    // time of one rank's NCCL call, for the record (no network involved).
    let big = Tensor::ones([25 * 1024 * 1024], (Kind::Float, device));
    let t0 = Instant::now();
    for _ in 0..10 {
        group
            .all_reduce_sum(std::slice::from_ref(&big))
            .expect("all-reduce of 100 MB");
    }
    tch::Cuda::synchronize(0);
    println!(
        "nccl_check: 10 all-reduces of 100 MB on 1 rank: {:?} each",
        t0.elapsed() / 10
    );
    if values != expected {
        eprintln!("nccl_check: expected {expected:?}");
        std::process::exit(1);
    }
    println!("nccl_check: ok");
}
