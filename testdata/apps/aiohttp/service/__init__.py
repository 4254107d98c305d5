"""An aiohttp service in a flat-layout package."""
