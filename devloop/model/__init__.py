"""The bottom layer: the Plan a Tiltfile evaluates to, the API's object kinds, and the small
value parsers (image references, Dockerfiles, durations) every layer above may use."""
