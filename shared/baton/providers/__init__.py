"""Provider adapters: one module per provider, all behind :class:`~baton.providers.base.Provider`."""
