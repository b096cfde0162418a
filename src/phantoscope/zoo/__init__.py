"""Built-in operators, by the name `phantoscope operator serve NAME` takes.

Each entry is a `module:Class` path imported only when that operator is served, so that
listing the built-ins never loads a model runtime.
"""

BUILTINS: dict[str, str] = {
    "efficientnet-lite0-encoder": "phantoscope.zoo.efficientnet:EfficientNetLite0Encoder",
    "mobilenet-v2-encoder": "phantoscope.zoo.mobilenet:MobileNetV2Encoder",
    "resnet50-encoder": "phantoscope.zoo.resnet:ResNet50Encoder",
    "vgg16-encoder": "phantoscope.zoo.vgg:VGG16Encoder",
    "face-detector": "phantoscope.zoo.face_detector:FaceDetector",
    "face-encoder": "phantoscope.zoo.face_encoder:FaceEncoder",
}

DEFAULT_ENCODER = "efficientnet-lite0-encoder"
