"""One reader per framework: each turns a model spec into a :class:`montage.net.Loaded` and
plans its :class:`montage.net.Forward`, importing only :mod:`montage.net`, montage's stages and
its own framework. :mod:`montage.models` maps a spec to its reader (imported on first use).

- :mod:`.keras`: Keras models by keras.applications name, ``.keras``/``.h5`` files, objects.
- :mod:`.keras_file`: Keras files read without Keras (the instant path for kernels).
- :mod:`.torch`: torchvision names, TorchScript and pickled modules, ``nn.Module`` objects.
- :mod:`.onnx_model`: ONNX graphs (kernels with ``onnx``, maps with ``onnxruntime``).

Shared by readers, not readers themselves: :mod:`.applications` (keras.applications' table,
HED's weights), :mod:`.traced` (forward passes of graphs traced at one input size: PyTorch,
ONNX) and :mod:`.oihw` (their kernels in Keras' layout).
"""
