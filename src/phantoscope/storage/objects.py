"""Original images: a local folder, or any S3 store (AWS, MinIO...).

INTERFACE CONTRACT (implementation pending):

    class ObjectStoreError(RuntimeError): ...
    class ObjectNotFoundError(ObjectStoreError): ...

    class ObjectStore:
        def ensure_bucket(self, bucket: str) -> None
        def delete_bucket(self, bucket: str) -> None   # removes the bucket and all its objects
        def bucket_exists(self, bucket: str) -> bool
        def put(self, bucket: str, key: str, data: bytes, content_type: str) -> None
        def get(self, bucket: str, key: str) -> tuple[bytes, str]   # data, content type
        def delete(self, bucket: str, key: str) -> None  # no error if absent
        def keys(self, bucket: str) -> list[str]
        def presigned_url(self, bucket: str, key: str, expires_s: int) -> str | None
            # None where the API must serve the object itself (folder store)

    def open_object_store(url: str) -> ObjectStore
"""
