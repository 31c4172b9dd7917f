"""The HTTP service (`ingest serve`): Adobe's streaming inlet and a profile API. The web
framework lives here only; the rules it applies are domain's (docs/service.md)."""
