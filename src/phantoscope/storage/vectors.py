"""Vector collections in Milvus: embedded Milvus Lite (a `.db` path) or a server (`http://`).

INTERFACE CONTRACT (implementation pending):

    @dataclass(frozen=True)
    class VectorHit:
        id: int          # the int64 primary key given at insert
        distance: float  # as Milvus reports it for the collection's metric

    class VectorStoreError(RuntimeError): ...   # backend failures, message says what failed

    class VectorStore:
        def create_collection(self, name: str, dimension: int, metric: str) -> None
        def drop_collection(self, name: str) -> None            # no error if absent
        def has_collection(self, name: str) -> bool
        def insert(self, name: str, ids: Sequence[int], vectors: np.ndarray) -> None
        def delete(self, name: str, ids: Sequence[int]) -> None
        def search(self, name: str, vectors: np.ndarray, topk: int) -> list[list[VectorHit]]
        def count(self, name: str) -> int
        def close(self) -> None

    def open_vector_store(uri: str) -> VectorStore
"""
