"""Services: users and auth, the job queue and its worker, the gallery and its file store."""
