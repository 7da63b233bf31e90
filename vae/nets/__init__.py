"""The networks and their objective: the VAE (MLP or conv encoder and decoder), the one loss (KL, ELBO,
reparameterization as in Kingma & Welling 2013) and the MLP's backward written out on that loss."""
