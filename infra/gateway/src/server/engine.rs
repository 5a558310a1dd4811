//! The wasmtime engine and its epoch ticker.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use wasmtime::Engine;

use super::{App, Limits};

/// How often the epoch advances; a running guest yields to other requests this often.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Builds the engine: pooling allocator (copy-on-write memory images are on by
/// default), epoch interruption for timeouts, async support, and a compiled-code
/// cache (compiling a component takes ~0.1–1 s; loading it from the cache, ms).
pub(super) fn engine(cache_dir: &Path, limits: &Limits) -> Result<Engine> {
    let mut config = wasmtime::Config::new();
    config.epoch_interruption(true);
    config.wasm_component_model(true);
    config.memory_init_cow(true);
    let mut pool = wasmtime::PoolingAllocationConfig::default();
    pool.total_component_instances(limits.max_instances);
    pool.total_core_instances(limits.max_instances * 4);
    pool.total_memories(limits.max_instances * 2);
    pool.total_tables(limits.max_instances * 4);
    pool.total_stacks(limits.max_instances);
    pool.max_memory_size(limits.max_memory_bytes);
    // Reset returned instances in batches and keep their first pages resident: the
    // per-instance `madvise` and the page faults after it were ~23 % of the gateway's
    // CPU on /healthz (perf, see docs/BENCHMARKS.md).
    pool.decommit_batch_size(32);
    pool.linear_memory_keep_resident(1 << 20);
    pool.table_keep_resident(1 << 20);
    pool.pagemap_scan(wasmtime::Enabled::Auto);
    config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
    let mut cache = wasmtime::CacheConfig::new();
    cache.with_directory(std::path::absolute(cache_dir)?);
    config.cache(Some(wasmtime::Cache::new(cache)?));
    Ok(Engine::new(&config)?)
}

impl App {
    /// Advances the engine's epoch every [`EPOCH_TICK`] until the app is dropped.
    pub(super) fn start_epoch_ticker(&self) {
        let engine = self.engine.weak();
        std::thread::Builder::new()
            .name("courier-epoch".into())
            .spawn(move || {
                while let Some(engine) = engine.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })
            .ok();
    }
}
