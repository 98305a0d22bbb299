//! Host bindings of the `aos:kernel@0.1.0` world. Imports are async (a
//! syscall awaits the kernel) and trappable: the outer `wasmtime::Result` is a
//! trap, the inner `Result` is the error the guest sees.

wasmtime::component::bindgen!({
    path: "../../wit/v0.1",
    world: "skill-service",
    imports: { default: async | trappable },
    exports: { default: async },
});
