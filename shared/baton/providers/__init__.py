"""Provider adapters: one module per provider, behind :class:`baton.providers.base.Provider`."""
