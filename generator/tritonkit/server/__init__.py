"""The local tritonserver: its installation (`install`), the models it loads (`models`) and a
running server (`process`)."""
