"""Analysis figures behind ``tools/analysis/`` (the embeddings themselves
come from :mod:`mmseg_contrast.tooling.embedding_analysis`):

* :mod:`.tsne` - t-SNE of pixel embeddings, models side by side
  (``tsne_embeddings.py``);
* :mod:`.relation` - class-relation graph, ReCo's negative-class sampling
  distribution and dendrogram (``class_relation.py``);
* :mod:`.curves` - training curves from mmengine JSON logs
  (``plot_curves.py``);
* :mod:`.demo` - all of them for a CE-only vs a contrastive run
  (``demo_figures.py``);
* :mod:`.errors` - :class:`FigureInputError`.

matplotlib, SciPy and scikit-learn are imported only when a figure is
drawn.
"""
