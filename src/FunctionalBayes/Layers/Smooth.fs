namespace FunctionalBayes

// (filled in by the layers work)
