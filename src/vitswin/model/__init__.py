"""The model: a timm network as configured (`network`), what its family is (`architecture`), the on-device
input pipeline (`transforms`) and the LightningModule that trains it and loads a finished run (`classifier`)."""
