from .aux_embedding_mixin import AuxEmbeddingMixin, ProjectionHead  # noqa: F401
