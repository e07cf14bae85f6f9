import AdaK
