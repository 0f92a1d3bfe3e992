"""Everything ffexp takes from libraries' private APIs: each module gates on the versions its tests cover and falls back to the public path, warning once."""
