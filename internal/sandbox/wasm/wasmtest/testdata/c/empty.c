// empty: prints nothing; the result is {}.
int main(void) { return 0; }
