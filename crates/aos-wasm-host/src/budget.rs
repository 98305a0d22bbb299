//! `limits.memoryMb` as a budget for the whole instance: every linear memory
//! and every table element (8 bytes: a reference) counts against one sum, and
//! the number of instances, memories and tables is capped. wasmtime's own
//! `StoreLimits` bounds each memory on its own — 64 memories, or one table
//! of 2^27 elements, each took 1 GiB under `memoryMb: 16`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use wasmtime::ResourceLimiter;

/// Bytes a table element is counted for.
pub(crate) const TABLE_ELEMENT_BYTES: usize = 8;
/// Core and component instances one store may create.
pub(crate) const MAX_INSTANCES: usize = 64;
/// Linear memories one store may create.
pub(crate) const MAX_MEMORIES: usize = 16;
/// Tables one store may create.
pub(crate) const MAX_TABLES: usize = 64;

/// The budget of one store.
#[derive(Debug)]
pub(crate) struct Budget {
    limit: usize,
    used: usize,
    /// `used`, readable from outside the store (the service view).
    gauge: Arc<AtomicUsize>,
}

impl Budget {
    /// A budget of `mb` MiB.
    pub(crate) fn mb(mb: u64) -> Budget {
        Budget {
            limit: usize::try_from(mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX),
            used: 0,
            gauge: Arc::default(),
        }
    }

    /// The same budget, reporting what it has taken through `gauge` (reset
    /// to 0: a budget belongs to one new store).
    pub(crate) fn reporting(mut self, gauge: Arc<AtomicUsize>) -> Budget {
        gauge.store(self.used, Ordering::Relaxed);
        self.gauge = gauge;
        self
    }

    /// Bytes taken so far.
    #[cfg(test)]
    pub(crate) fn used(&self) -> usize {
        self.used
    }

    fn take(&mut self, bytes: usize, what: &str) -> wasmtime::Result<bool> {
        let total = self.used.saturating_add(bytes);
        if total > self.limit {
            // The text `classify` maps to a limit fault.
            return Err(wasmtime::format_err!(
                "growing {what} by {bytes} bytes exceeds memory limits: {total} of {} bytes (limits.memoryMb) for all memories and tables",
                self.limit
            ));
        }
        self.used = total;
        self.gauge.store(total, Ordering::Relaxed);
        Ok(true)
    }
}

impl ResourceLimiter for Budget {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.take(desired.saturating_sub(current), "a memory")
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let bytes = desired
            .saturating_sub(current)
            .saturating_mul(TABLE_ELEMENT_BYTES);
        self.take(bytes, "a table")
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::{Config, Engine, Instance, Module, Store};

    /// A module with `memories` memories of one page and a table of one
    /// element; `grow` grows memory `i` by `pages`, `grow_table` the table.
    fn module(engine: &Engine, memories: usize) -> Module {
        let mems: String = (0..memories).map(|_| "(memory 1)").collect();
        let grows: String = (0..memories)
            .map(|i| format!("(func (export \"grow{i}\") (param i32) (result i32) (memory.grow {i} (local.get 0)))"))
            .collect();
        let text = format!(
            "(module {mems} (table 1 funcref) {grows}
               (func (export \"grow_table\") (param i32) (result i32)
                 (table.grow 0 (ref.null func) (local.get 0))))"
        );
        Module::new(engine, wat::parse_str(&text).expect("wat")).expect("module")
    }

    fn store(engine: &Engine, mb: u64) -> Store<Budget> {
        let mut store = Store::new(engine, Budget::mb(mb));
        store.limiter(|b| b);
        store
    }

    fn engine() -> Engine {
        let mut c = Config::new();
        c.wasm_multi_memory(true);
        Engine::new(&c).expect("engine")
    }

    #[test]
    fn many_memories_share_one_budget() {
        let engine = engine();
        let m = module(&engine, 8);
        let mut s = store(&engine, 2);
        let i = Instance::new(&mut s, &m, &[]).expect("instance");
        assert_eq!(s.data().used(), 8 * 65536 + TABLE_ELEMENT_BYTES);
        // 2 MiB = 32 pages: 8 taken, 24 more fit across memories, not 25.
        let mut grown = 0;
        for k in 0..8 {
            let f = i
                .get_typed_func::<i32, i32>(&mut s, &format!("grow{k}"))
                .expect("grow");
            match f.call(&mut s, 3) {
                Ok(r) if r >= 0 => grown += 3,
                _ => break,
            }
        }
        assert_eq!(grown, 21, "every memory counts against the one budget");
        let f = i.get_typed_func::<i32, i32>(&mut s, "grow0").expect("grow");
        let e = f.call(&mut s, 4).expect_err("over budget");
        assert!(format!("{e:?}").contains("exceeds memory limits"), "{e:?}");
    }

    #[test]
    fn table_elements_count_and_memories_are_capped() {
        let engine = engine();
        let m = module(&engine, 1);
        let mut s = store(&engine, 1);
        let i = Instance::new(&mut s, &m, &[]).expect("instance");
        let grow = i
            .get_typed_func::<i32, i32>(&mut s, "grow_table")
            .expect("grow_table");
        // 1 MiB holds the page already taken and ~120k more elements, not 2^27.
        assert!(grow.call(&mut s, 1 << 27).is_err(), "2^27 elements refused");
        let too_many = module(&engine, MAX_MEMORIES + 1);
        let mut s = store(&engine, 64);
        assert!(Instance::new(&mut s, &too_many, &[]).is_err());
    }
}
