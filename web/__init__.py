"""The Falcon WSGI service: validates reports, enqueues them, serves cached grids and the page."""
