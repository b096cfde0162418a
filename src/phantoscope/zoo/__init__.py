"""Built-in operators, by the name `phantoscope operator serve NAME` takes.

Each entry is a `module:Class` path imported only when that operator is served, so that
listing the built-ins never loads a model runtime.
"""

BUILTINS: dict[str, str] = {
    "efficientnet-lite0-encoder": "phantoscope.zoo.efficientnet:EfficientNetLite0Encoder",
    "mobilenet-v2-encoder": "phantoscope.zoo.mobilenet:MobileNetV2Encoder",
    "resnet50-encoder": "phantoscope.zoo.resnet:ResNet50Encoder",
    "vgg16-encoder": "phantoscope.zoo.vgg:VGG16Encoder",
    # Static int8 copies of the encoders above (quantised once, cached): faster on CPUs.
    "efficientnet-lite0-encoder-int8": "phantoscope.zoo.int8:EfficientNetLite0Int8Encoder",
    "mobilenet-v2-encoder-int8": "phantoscope.zoo.int8:MobileNetV2Int8Encoder",
    "resnet50-encoder-int8": "phantoscope.zoo.int8:ResNet50Int8Encoder",
    "vgg16-encoder-int8": "phantoscope.zoo.int8:VGG16Int8Encoder",
    # CLIP ViT-B/32's two towers (one 512-d space): pair them in a pipeline to search by words.
    "clip-vit-b-32-image-encoder": "phantoscope.zoo.clip:ClipImageEncoder",
    "clip-vit-b-32-text-encoder": "phantoscope.zoo.clip:ClipTextEncoder",
    "face-detector": "phantoscope.zoo.face_detector:FaceDetector",
    "face-encoder": "phantoscope.zoo.face_encoder:FaceEncoder",
}

DEFAULT_ENCODER = "efficientnet-lite0-encoder"
