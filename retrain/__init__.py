"""streamsense continuous fine-tuning: feedback store, retrain job, gate."""
