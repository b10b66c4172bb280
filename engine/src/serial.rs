//! Serial stand-ins for the few rayon adaptors the engine uses, for builds without the `parallel`
//! feature (WebAssembly, embedded): the same results in the same order, on the calling thread.

/// `map_init` on a plain iterator: one state for the whole run.
pub(crate) struct MapInit<I>(pub I);

impl<I: Iterator> MapInit<I> {
    /// Map every element with a mutable state made once by `init`.
    pub(crate) fn map_init<S, R>(
        self,
        init: impl Fn() -> S,
        f: impl Fn(&mut S, I::Item) -> R,
    ) -> impl Iterator<Item = R> {
        let mut state = init();
        self.0.map(move |x| f(&mut state, x))
    }
}
